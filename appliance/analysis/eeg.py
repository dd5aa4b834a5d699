"""Processed EEG on the continuous stream: band powers every epoch, a baseline, and the
hemispheric criterion.

`EegPipeline.push(data_uv (n_ch, n), first_sample) -> outputs` on the full-rate stream of the
monitor's channels. Per epoch (2 s): "eeg_trend" (per channel band powers, relative alpha,
alpha/delta, SEF95, burst-suppression ratio; per side the fast-power ratio to baseline and the
left/right asymmetry) and "eeg_raw" (the EEG decimated for display). Conditions:

- fast (alpha+beta) power below (1 - fast_loss) of baseline on one side, and that side's ratio
  below asymmetry_max x the other side's (the sides differ), for confirm_epochs epochs
  -> physiological HIGH "eeg.fast_loss:<side>"
- below (1 - fast_loss) on both sides without such an asymmetry -> physiological MEDIUM
  "eeg.global_change" (anaesthetic, as for SSEP)
An active condition clears after confirm_epochs epochs back beyond its criterion by
`clear_margin` (hysteresis, as analysis.clear_amplitude_margin for SSEP), and while the global
change is active a one-sided loss needs asymmetry_max - clear_margin: a change hovering at the
criterion stays one condition, and a bilateral change whose per-side ratios scatter is less
often taken for a one-sided one (not never: docs/continuous.md, "Independent check").
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from appliance.analysis.continuous_outputs import EegRaw, EegTrend, rounded
from appliance.analysis.decimate import Decimator
from appliance.conditions import Condition, Kind, Priority
from appliance.dsp.filters import StreamingFilter, bandpass_sos
from appliance.modalities import eeg as measures_mod

EEG_RATE_HZ = 250.0  # analysis rate: the bands end at 30 Hz
EEG_BAND_HZ = (0.5, 45.0)


class EegPipeline:
    """EEG on `settings.left` + `settings.right` (rows `rows` of the monitor's stream)."""

    def __init__(self, settings, rows: list[int], fs_hz: float) -> None:
        self.s = settings
        self.names = settings.channels
        self.rows = rows
        self.side_of = np.array(["L"] * len(settings.left) + ["R"] * len(settings.right))
        self.q = max(1, int(fs_hz // EEG_RATE_HZ))
        self.fs = fs_hz / self.q
        self.dec = Decimator(self.q, len(rows))
        self.filt = StreamingFilter(bandpass_sos(*EEG_BAND_HZ, self.fs), len(rows), "steady")
        self.n_welch = int(round(settings.welch_s * self.fs))
        self.n_seg = int(round(settings.segment_s * self.fs))
        self.n_epoch = int(round(settings.epoch_s * self.fs))
        self.raw_q = max(1, int(self.fs // settings.raw_rate_hz))
        self.buf = np.zeros((len(rows), 0))
        self.since_epoch = 0
        self.t_s = 0.0
        n_bsr = max(1, int(round(settings.bsr_window_s / settings.epoch_s)))
        self.suppressed: deque[float] = deque(maxlen=n_bsr)
        self.base_epochs: list[dict[str, np.ndarray]] = []
        self.baseline: dict[str, np.ndarray] | None = None
        self.streak = {"L": 0, "R": 0, "both": 0}  # consecutive epochs meeting the criterion
        self.calm = {"L": 0, "R": 0, "both": 0}  # ... not meeting it (clearing)
        self.active: set[str] = set()

    def reset(self) -> None:
        """A gap in the stream: restart the filters and the analysis window (baseline kept)."""
        self.dec.reset()
        self.filt.reset()
        self.buf = np.zeros((len(self.rows), 0))
        self.since_epoch = 0

    def push(self, data_uv: np.ndarray, first_sample: int, t_s: float) -> list:
        y, _ = self.dec.process(data_uv[self.rows], first_sample)
        if not y.shape[1]:
            return []
        y = self.filt.process(y)
        self.buf = np.concatenate([self.buf, y], axis=1)[:, -max(self.n_welch, self.n_epoch):]
        self.since_epoch += y.shape[1]
        out: list = []
        if self.since_epoch >= self.n_epoch and self.buf.shape[1] >= self.n_welch:
            self.since_epoch = 0
            self.t_s = t_s
            out += self._epoch()
        elif self.since_epoch >= self.n_epoch:
            self.since_epoch = 0
        return out

    def set_baseline(self) -> None:
        """Restart the baseline: the next baseline_s of epochs become it."""
        self.base_epochs, self.baseline = [], None

    def _epoch(self) -> list:
        s = self.s
        x = self.buf[:, -self.n_welch:]
        m = measures_mod.measures(x, self.fs, self.n_seg)
        ep = x[:, -self.n_epoch:]
        sup = measures_mod.suppressed(ep, self.fs, s.suppression_uv, s.suppression_s)
        self.suppressed.append(float(sup.all(axis=0).mean()))
        bsr = float(np.mean(self.suppressed))
        # cautery, movement: the window's powers are the artefact's, not the brain's
        artefact = bool(np.abs(x).max() > s.artefact_uv)
        if self.baseline is None and not artefact:
            self.base_epochs.append(m)
            if len(self.base_epochs) * s.epoch_s >= s.baseline_s:
                self.baseline = {k: np.median([e[k] for e in self.base_epochs], axis=0)
                                 for k in m}
        chans = {n: {k: rounded(v[i]) for k, v in m.items()} | {"bsr": rounded(bsr, 3)}
                 for i, n in enumerate(self.names)}
        sides: dict[str, dict[str, Any]] = {}
        conds: list[Condition] = []
        if self.baseline is not None:
            ratio = m["fast"] / np.maximum(self.baseline["fast"], 1e-12)
            for side in ("L", "R"):
                sel = self.side_of == side
                sides[side] = {"fast_ratio": rounded(float(np.mean(ratio[sel])), 3),
                               "relative_alpha_ratio": rounded(float(np.mean(
                                   m["relative_alpha"][sel] / np.maximum(
                                       self.baseline["relative_alpha"][sel], 1e-12))), 3)}
            fl, fr = (float(np.mean(m["fast"][self.side_of == sd])) for sd in ("L", "R"))
            sides["asymmetry"] = {"fast_lr": rounded((fl - fr) / max(fl + fr, 1e-12), 3)}
            if not artefact:  # an artefact epoch neither confirms nor clears a change
                conds = self._judge(sides)
        raw = EegRaw(self.t_s, self.fs / self.raw_q, self.names, ep[:, ::self.raw_q])
        return [EegTrend(self.t_s, chans, sides, self.baseline is not None, artefact), raw,
                *conds]

    def _judge(self, sides: dict[str, dict[str, Any]]) -> list[Condition]:
        s = self.s
        limit = 1.0 - s.fast_loss
        cid_of = {"L": "eeg.fast_loss:L", "R": "eeg.fast_loss:R", "both": "eeg.global_change"}
        r = {sd: sides[sd]["fast_ratio"] or 0.0 for sd in ("L", "R")}

        def margin(key: str) -> float:  # hysteresis: an active condition is held more easily
            return s.clear_margin if cid_of[key] in self.active else 0.0

        def one_sided(sd: str, other: str) -> bool:
            m = margin(sd)
            asym = s.asymmetry_max + m
            if m == 0 and "eeg.global_change" in self.active:
                asym -= s.clear_margin  # a global change is left for a one-sided one reluctantly
            return r[sd] < limit + m and r[sd] < asym * r[other]

        now = {"L": one_sided("L", "R"), "R": one_sided("R", "L")}
        m = margin("both")
        now["both"] = r["L"] < limit + m and r["R"] < limit + m and not (now["L"] or now["R"])
        for key, met in now.items():
            self.streak[key] = self.streak[key] + 1 if met else 0
            self.calm[key] = 0 if met else self.calm[key] + 1
        ev = {"fast_ratio": {sd: sides[sd]["fast_ratio"] for sd in ("L", "R")},
              "limit_ratio": round(limit, 3), "asymmetry_max": s.asymmetry_max,
              "asymmetry": sides["asymmetry"]["fast_lr"], "confirm_epochs": s.confirm_epochs}
        out = []
        for key, cid, prio, msg in (
            ("L", "eeg.fast_loss:L", Priority.HIGH,
             "EEG: left hemisphere lost fast activity (ischaemia?)"),
            ("R", "eeg.fast_loss:R", Priority.HIGH,
             "EEG: right hemisphere lost fast activity (ischaemia?)"),
            ("both", "eeg.global_change", Priority.MEDIUM,
             "EEG: fast activity lost on both sides: check anaesthesia, blood pressure"),
        ):
            if cid in self.active:
                on = self.calm[key] < s.confirm_epochs
            else:
                on = self.streak[key] >= s.confirm_epochs
            site = {"L": "left", "R": "right"}.get(key, "")
            if on or cid in self.active:
                out.append(Condition(cid, Kind.PHYSIOLOGICAL, prio, on, self.t_s, site, msg,
                                     dict(ev)))
            (self.active.add if on else self.active.discard)(cid)
        return out
