"""Triggered EMG on the continuous stream: each pulse on `trigger_bit` is measured in the
response window on every channel at the intensity in effect ("temg_response"); a threshold
search, started per labelled target (`start_search`), steps the intensity and ends in a
"temg_threshold" with a condition when the threshold is low:

- threshold < alarm_ma    -> physiological HIGH "temg.threshold:<target>" (likely breach)
- threshold < warning_ma  -> physiological MEDIUM (possible breach)
A later search of the same target at or above warning_ma ends the condition.

The intensity of each pulse comes from the search, from `set_intensity` (a command) or from the
config's start_ma; `intensity_ma` is what the stimulator control should apply next.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.analysis.continuous_outputs import TemgOutput
from appliance.conditions import Condition, Kind, Priority
from appliance.dsp.blank import HoldBlanker
from appliance.dsp.filters import StreamingFilter, bandpass_sos
from appliance.errors import CommandError
from appliance.modalities.emg_triggered import ThresholdSearch, response

BAND_HZ = (10.0, 1500.0)
BLANK_MS = 2.0
PRE_MS = 10.0


class TriggeredEmgPipeline:
    def __init__(self, settings, rows: list[int], fs_hz: float) -> None:
        s = self.s = settings
        self.names = settings.channels
        self.rows = rows
        self.fs = fs_hz
        self.bit = 1 << s.trigger_bit
        hi = min(BAND_HZ[1], 0.45 * fs_hz)
        self.filt = StreamingFilter(bandpass_sos(BAND_HZ[0], hi, fs_hz), len(rows), "steady")
        self.blanker = HoldBlanker(int(round(BLANK_MS * fs_hz / 1e3)), self.bit)
        self.w0 = int(round(s.window_ms[0] * fs_hz / 1e3))
        self.w1 = int(round(s.window_ms[1] * fs_hz / 1e3))
        self.n_pre = int(round(PRE_MS * fs_hz / 1e3))
        self.intensity_ma = s.start_ma
        self.target = ""
        self.search: ThresholdSearch | None = None
        self.active: set[str] = set()
        self.thresholds: dict[str, float | None] = {}
        self.reset()

    def reset(self) -> None:
        self.filt.reset()
        self.blanker.reset()
        self._hist = np.zeros((len(self.rows), 0))
        self._hist_start = 0
        self._pulses: list[tuple[int, float, str]] = []
        self._prev_bit = False

    # -- commands ---------------------------------------------------------------------------
    def start_search(self, target: str) -> dict[str, Any]:
        if not target.strip():
            raise CommandError("temg_search: give the target's label, e.g. 'L4 left screw'")
        s = self.s
        self.target = target
        self.search = ThresholdSearch(target, s.start_ma, s.step_ma, s.fine_step_ma, s.max_ma)
        self.intensity_ma = self.search.intensity_ma
        return {"target": target, "intensity_ma": self.intensity_ma}

    def set_intensity(self, ma: float, target: str | None = None) -> dict[str, Any]:
        v = float(ma)
        if not 0.0 <= v <= self.s.max_ma:
            raise CommandError(f"temg_intensity: got {ma!r} mA, allowed: 0 to {self.s.max_ma}.")
        self.search = None  # a manual intensity ends a search
        self.intensity_ma = v
        if target is not None:
            self.target = target
        return {"target": self.target, "intensity_ma": v}

    # -- the stream -------------------------------------------------------------------------
    def push(self, block, t_s: float) -> list:
        x = block.data_uv[self.rows]
        trig = (block.trigger & self.bit) != 0
        rising = np.flatnonzero(trig & ~np.concatenate([[self._prev_bit], trig[:-1]]))
        self._prev_bit = bool(trig[-1]) if trig.size else self._prev_bit
        for r in rising:
            self._pulses.append((block.first_sample + int(r), self.intensity_ma, self.target))
        y = self.filt.process(self.blanker.process(x, block.trigger))
        if self._hist.shape[1] == 0:
            self._hist_start = block.first_sample
        self._hist = np.concatenate([self._hist, y], axis=1)
        keep = self.n_pre + self.w1 + y.shape[1] + 1
        if self._hist.shape[1] > 4 * keep:
            cut = self._hist.shape[1] - 2 * keep
            self._hist = self._hist[:, cut:]
            self._hist_start += cut
        out: list = []
        end = self._hist_start + self._hist.shape[1]
        while self._pulses and self._pulses[0][0] + self.w1 <= end:
            out += self._measure(*self._pulses.pop(0))
        return out

    def _measure(self, sample: int, ma: float, target: str) -> list:
        a = sample - self._hist_start
        if a - self.n_pre < 0:
            return []  # its pre-pulse samples are gone (a gap): not judged
        res = {name: response(self._hist[c, a + self.w0: a + self.w1],
                              self._hist[c, a - self.n_pre: a - 1], self.fs,
                              self.s.window_ms[0], self.s.response_uv)
               for c, name in enumerate(self.names)}
        any_resp = any(r["response"] for r in res.values())
        t_s = sample / self.fs
        out: list = [TemgOutput({"type": "temg_response", "t_s": round(t_s, 4),
                                 "target": target, "intensity_ma": round(ma, 3),
                                 "response": any_resp, "channels": res})]
        if self.search is not None and target == self.search.target:
            self.search.observe(ma, any_resp)
            self.intensity_ma = self.search.intensity_ma
            if self.search.done:
                out += self._finish(self.search, t_s)
                self.search = None
        return out

    def _finish(self, search: ThresholdSearch, t_s: float) -> list:
        s = self.s
        thr = search.lowest_response_ma
        self.thresholds[search.target] = thr
        body = {"type": "temg_threshold", "t_s": round(t_s, 4), "target": search.target,
                "threshold_ma": thr, "above_max": thr is None, "max_ma": s.max_ma,
                "warning_ma": s.warning_ma, "alarm_ma": s.alarm_ma,
                "steps": [{"intensity_ma": i, "response": r} for i, r in search.steps]}
        out: list = [TemgOutput(body)]
        cid = f"temg.threshold:{search.target}"
        prio = (None if thr is None or thr >= s.warning_ma else
                Priority.HIGH if thr < s.alarm_ma else Priority.MEDIUM)
        ev = {"target": search.target, "threshold_ma": thr, "warning_ma": s.warning_ma,
              "alarm_ma": s.alarm_ma}
        if prio is not None:
            out.append(Condition(cid, Kind.PHYSIOLOGICAL, prio, True, t_s, search.target,
                                 f"Triggered EMG {search.target}: threshold {thr:g} mA "
                                 f"(< {s.alarm_ma if prio == Priority.HIGH else s.warning_ma:g}"
                                 " mA): possible breach", ev))
            self.active.add(cid)
        elif cid in self.active:
            out.append(Condition(cid, Kind.PHYSIOLOGICAL, Priority.MEDIUM, False, t_s,
                                 search.target, f"Triggered EMG {search.target}: threshold "
                                 "now at or above the warning level", ev))
            self.active.discard(cid)
        return out
