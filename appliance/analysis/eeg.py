"""Processed EEG on the continuous stream: band powers every epoch, a baseline, and the
hemispheric criterion.

`EegPipeline.push(data_uv (n_ch, n), first_sample) -> outputs` on the full-rate stream of the
monitor's channels. Per epoch (2 s): "eeg_trend" (per channel band powers, relative alpha,
alpha/delta, SEF95, burst-suppression ratio; per side the fast-power ratio to baseline and the
left/right asymmetry) and "eeg_raw" (the EEG decimated for display). Conditions:

Both criteria are judged on log fast-power ratios to baseline averaged over a few epochs,
because a single 4-s Welch estimate scatters too much to tell the sides apart (a bilateral 60 %
loss gave per-epoch L/R ratios of 0.58-1.81; docs/continuous.md):
- loss on a side: the geometric mean of its last `confirm_epochs` ratios below 1 - fast_loss;
- one-sided: a side lost, and the mean of log(L/R) over the last `asymmetry_epochs` epochs
  (the same epochs for both sides) below log(asymmetry_max) -> physiological HIGH
  "eeg.fast_loss:<side>";
- both sides lost without that asymmetry -> physiological MEDIUM "eeg.global_change"
  (anaesthetic, as for SSEP).
An active condition clears after `clear_epochs` epochs beyond its criterion by `clear_margin`
(hysteresis, as analysis.clear_amplitude_margin for SSEP), and while the global change is active
a one-sided loss needs asymmetry_max - clear_margin (a global change is left for a one-sided one
reluctantly; a clamp deepening one side under an anaesthetic change still raises HIGH).
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
        # per judged epoch: log fast ratio to baseline per side (the criteria average these)
        self.log_ratio: deque[tuple[float, float]] = deque(
            maxlen=max(settings.confirm_epochs, settings.asymmetry_epochs))
        self.calm = {"L": 0, "R": 0, "both": 0}  # consecutive epochs not meeting a criterion
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
        self.log_ratio.clear()

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
        r = {sd: max(sides[sd]["fast_ratio"] or 0.0, 1e-6) for sd in ("L", "R")}
        self.log_ratio.append((np.log(r["L"]), np.log(r["R"])))
        hist = np.array(self.log_ratio)
        loss = dict(zip(("L", "R"), np.exp(hist[-s.confirm_epochs:].mean(axis=0)), strict=True))
        lr = float(np.exp(np.mean(hist[-s.asymmetry_epochs:, 0] - hist[-s.asymmetry_epochs:, 1])))
        ratio_of = {"L": lr, "R": 1.0 / lr}  # that side's ratio over the other's, same epochs
        cid_of = {"L": "eeg.fast_loss:L", "R": "eeg.fast_loss:R", "both": "eeg.global_change"}

        def margin(key: str) -> float:  # hysteresis: an active condition is held more easily
            return s.clear_margin if cid_of[key] in self.active else 0.0

        def one_sided(sd: str) -> bool:
            m = margin(sd)
            asym = s.asymmetry_max + m
            if m == 0 and "eeg.global_change" in self.active:
                asym -= s.clear_margin  # a global change is left for a one-sided one reluctantly
            return loss[sd] < limit + m and ratio_of[sd] < asym

        now = {"L": one_sided("L"), "R": one_sided("R")}
        m = margin("both")
        now["both"] = loss["L"] < limit + m and loss["R"] < limit + m and not (now["L"] or now["R"])
        for key, met in now.items():
            self.calm[key] = 0 if met else self.calm[key] + 1
        ev = {"fast_ratio": {sd: sides[sd]["fast_ratio"] for sd in ("L", "R")},
              "loss_ratio": {sd: round(float(v), 3) for sd, v in loss.items()},
              "limit_ratio": round(limit, 3), "lr_ratio": round(lr, 3),
              "asymmetry_max": s.asymmetry_max, "asymmetry": sides["asymmetry"]["fast_lr"],
              "confirm_epochs": s.confirm_epochs, "asymmetry_epochs": s.asymmetry_epochs}
        out = []
        for key, cid, prio, msg in (
            ("L", "eeg.fast_loss:L", Priority.HIGH,
             "EEG: left hemisphere lost fast activity (ischaemia?)"),
            ("R", "eeg.fast_loss:R", Priority.HIGH,
             "EEG: right hemisphere lost fast activity (ischaemia?)"),
            ("both", "eeg.global_change", Priority.MEDIUM,
             "EEG: fast activity lost on both sides: check anaesthesia, blood pressure"),
        ):
            # raising needs one epoch: the averaged ratios are the confirmation
            on = self.calm[key] < s.clear_epochs if cid in self.active else now[key]
            site = {"L": "left", "R": "right"}.get(key, "")
            if on or cid in self.active:
                out.append(Condition(cid, Kind.PHYSIOLOGICAL, prio, on, self.t_s, site, msg,
                                     dict(ev)))
            (self.active.add if on else self.active.discard)(cid)
        return out
