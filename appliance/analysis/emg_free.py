"""Free-running EMG on the continuous stream: activity trend, spikes, bursts, A-trains and train
time per channel, stimulus blanking, cautery suppression, and the audio feed.

`EmgFreePipeline.push(block, t_s) -> outputs`, every block (not the monitor's batches). Per
block: blank `blank_ms` after each trigger (sample-and-hold, before the band-pass so the
artefact does not ring through it), band-pass, cut into `window_ms` windows; per window and
channel: RMS, cautery check across channels, activity against the background; runs of activity
are classified by appliance/modalities/emg_free.py. Outputs:

- "emg_event": spike / burst (at their end), a_train (at onset, once classified, and at its end),
  cautery (start/end); each with a raw (filtered) snippet around it
- "emg_trend" every `trend_s`: per channel RMS, train time, cautery time
- Conditions: "emg.a_train:<ch>" MEDIUM (any A-train is a warning) from onset until
  burst_hold_s after it; "emg.burst:<ch>" MEDIUM for burst_hold_s after a burst;
  "emg.train_time:<ch>" MEDIUM past train_time_warning_s, HIGH past train_time_alarm_s
  (latched: train time only grows until `reset_train_time`).
`audio` holds the last block's filtered, blanked EMG per channel and whether it is muted
(cautery); appliance/outputs/audio.py plays it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.analysis.continuous_outputs import EmgEvent, EmgTrend
from appliance.conditions import Condition, Kind, Priority
from appliance.dsp.blank import HoldBlanker
from appliance.dsp.filters import StreamingFilter, bandpass_sos
from appliance.modalities import emg_free as cls

END_GAP_WINDOWS = 3  # a run ends after this many quiet windows (30 ms at 10 ms windows)
BURST_MAX_S = 1.0  # continuous irregular activity is reported in bursts of at most this
BACKGROUND_TAU_WINDOWS = 100.0  # background RMS follows quiet windows over ~1 s
BACKGROUND_MAX_RATIO = 2.0  # ... those below this x the background
A_TRAIN_CHECKS = 2  # consecutive windows whose last a_train_min_ms test sinusoidal
HISTORY_S = 1.5  # filtered samples kept for snippets and A-train checks


@dataclass
class _Run:
    start: int  # absolute sample of the first active window
    last_active: int  # absolute sample after the last active window
    quiet: int = 0
    a_train: bool = False
    a_checks: int = 0  # consecutive sinusoidal tests passed
    freq_hz: float = 0.0
    peak_uv: float = 0.0


class EmgFreePipeline:
    """Free-running EMG on `settings.channels` (rows `rows` of the stream). Not thread-safe."""

    def __init__(self, settings, rows: list[int], fs_hz: float) -> None:
        s = self.s = settings
        self.names = settings.channels
        self.rows = rows
        self.fs = fs_hz
        n_ch = len(rows)
        hi = min(s.band_hz[1], 0.45 * fs_hz)
        self.filt = StreamingFilter(bandpass_sos(s.band_hz[0], hi, fs_hz), n_ch, "steady")
        self.n_win = max(1, int(round(s.window_ms * fs_hz / 1e3)))
        self.n_a = max(8, int(round(s.a_train_min_ms * fs_hz / 1e3)))
        self.n_spike = int(round(s.spike_max_ms * fs_hz / 1e3))
        self.blanker = HoldBlanker(int(round(s.blank_ms * fs_hz / 1e3)), s.trigger_mask,
                                   int(round(s.blank_extend_ms * fs_hz / 1e3)),
                                   s.blank_residual_uv)
        # the high-frequency edge of the cautery test stays inside the band-pass
        self.caut_edge_hz = min(s.cautery_hf_hz, 0.5 * hi)
        self.n_hold_caut = int(round(s.cautery_hold_ms * fs_hz / 1e3))
        self.n_hold = int(round(s.burst_hold_s * fs_hz))
        self.n_snip = int(round(s.snippet_ms * fs_hz / 1e3))
        self.n_batch = int(round(s.batch_ms * fs_hz / 1e3))
        self.n_hist = max(int(HISTORY_S * fs_hz), 2 * self.n_snip + self.n_a)
        self.reset()
        self.bg = np.full(n_ch, np.nan)
        self.train_time_n = np.zeros(n_ch, dtype=np.int64)  # finished A-train samples
        self.active: set[str] = set()
        self._hold_until: dict[str, int] = {}
        self._prio: dict[str, Priority] = {}
        self._trend_sum = np.zeros(n_ch)
        self._trend_k = 0
        self._trend_caut = 0
        self._next_trend: int | None = None
        self.audio: tuple[np.ndarray, bool] | None = None

    def reset(self) -> None:
        """A gap in the stream: restart filters, windows and runs (train time and background
        kept)."""
        n_ch = len(self.rows)
        self.filt.reset()
        self._carry = np.zeros((n_ch, 0))
        self._carry_start = 0
        self._hist = np.zeros((n_ch, 0))
        self._hist_start = 0
        self.blanker.reset()
        self._runs: list[_Run | None] = [None] * n_ch
        self._caut_until = -1
        self._in_cautery = False
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_n = 0
        self._pending_end = 0  # absolute sample after the last gathered one

    def take_audio(self) -> tuple[np.ndarray, bool] | None:
        """The last analysed chunk for the loudspeaker (once), or None."""
        chunk, self.audio = self.audio, None
        return chunk

    def reset_train_time(self) -> None:
        self.train_time_n[:] = 0

    # -- the stream -------------------------------------------------------------------------
    def push(self, block, t_s: float) -> list:
        """Blocks are gathered to `batch_ms` (48 ms) before they are analysed: the per-call
        cost of the filter is paid ~3x less often, for <= 48 ms more latency."""
        self._pending.append((block.data_uv[self.rows], block.trigger))
        self._pending_n += block.n_samples
        self._pending_end = block.end_sample
        if self._pending_n < self.n_batch:
            return []
        return self.flush()

    def flush(self) -> list:
        """End of a finite source (replay): analyse the samples still gathering (< batch_ms)."""
        if not self._pending_n:
            return []
        n = self._pending_n
        x = np.concatenate([p[0] for p in self._pending], axis=1)
        trig = np.concatenate([p[1] for p in self._pending])
        self._pending, self._pending_n = [], 0
        return self._analyse(x, trig, self._pending_end - n)

    def _analyse(self, x: np.ndarray, trigger: np.ndarray, s0: int) -> list:
        x = self.blanker.process(x, trigger)
        y = self.filt.process(x)
        if self._next_trend is None:
            self._next_trend = s0 + int(round(self.s.trend_s * self.fs))
        # history for snippets and A-train checks
        if self._hist.shape[1] == 0:
            self._hist_start = s0
        self._hist = np.concatenate([self._hist, y], axis=1)
        if self._hist.shape[1] > self.n_hist:
            cut = self._hist.shape[1] - self.n_hist
            self._hist = self._hist[:, cut:]
            self._hist_start += cut
        # whole windows
        if self._carry.shape[1] == 0:
            self._carry_start = s0
        buf = np.concatenate([self._carry, y], axis=1)
        k = buf.shape[1] // self.n_win
        rms = cls.window_rms(buf, self.n_win)
        w0 = self._carry_start
        self._carry = buf[:, k * self.n_win:]
        self._carry_start = w0 + k * self.n_win
        out: list = []
        block_caut = False
        for j in range(k):
            win = buf[:, j * self.n_win:(j + 1) * self.n_win]
            out += self._window(rms[:, j], w0 + j * self.n_win, win)
            block_caut |= self._in_cautery
        end = s0 + y.shape[1]
        out += self._conditions(end)
        if end >= self._next_trend:
            out.append(self._trend(end))
            self._next_trend = end + int(round(self.s.trend_s * self.fs))
        # audio: muted while cautery is on or held (checked on this block's own samples too)
        raw_caut = self._cautery_now(np.sqrt(np.mean(y * y, axis=1)), y) if y.shape[1] else False
        self.audio = (y, bool(block_caut or raw_caut or self._in_cautery))
        return out

    def _cautery_now(self, rms: np.ndarray, y: np.ndarray) -> bool:
        """Cautery: window RMS over `cautery_uv` with a broadband (cautery-like) spectrum on at
        least `cautery_fraction` of the channels. The spectrum is looked at only when the
        amplitude test alone would pass (rare), so its cost is negligible."""
        s = self.s
        big = rms > s.cautery_uv
        if float(np.mean(big)) < s.cautery_fraction:
            return False
        big[big] = cls.high_share(y[big], self.fs, self.caut_edge_hz) >= s.cautery_hf_share
        return float(np.mean(big)) >= s.cautery_fraction

    def _window(self, rms: np.ndarray, s_w: int, y: np.ndarray) -> list:
        s = self.s
        out: list = []
        end_w = s_w + self.n_win
        if self._cautery_now(rms, y):
            self._caut_until = end_w + self.n_hold_caut
            if not self._in_cautery:
                self._in_cautery = True
                self._runs = [None] * len(self.rows)  # activity under cautery is not judged
                out.append(self._event(0, "cautery", "onset", s_w, None, float(rms.max()), None))
        elif self._in_cautery and end_w >= self._caut_until:
            self._in_cautery = False
            out.append(self._event(0, "cautery", "end", s_w, None, 0.0, None))
        if self._in_cautery:
            self._trend_caut += 1
            return out
        if np.isnan(self.bg).any():  # the first windows seed the background
            self.bg = np.where(np.isnan(self.bg), rms, self.bg)
        thr = np.maximum(s.threshold_factor * self.bg, s.floor_uv)
        active = rms > thr
        # the background follows only windows near it: activity just under the threshold (a
        # small A-train) must not raise it until the train can no longer be seen
        calm = rms < BACKGROUND_MAX_RATIO * self.bg
        self.bg[calm] += (rms[calm] - self.bg[calm]) / BACKGROUND_TAU_WINDOWS
        self._trend_sum += rms
        self._trend_k += 1
        for c in range(len(self.rows)):
            run = self._runs[c]
            if active[c]:
                if run is None:
                    run = self._runs[c] = _Run(s_w, end_w)
                run.last_active, run.quiet = end_w, 0
                run.peak_uv = max(run.peak_uv, float(rms[c]) * np.sqrt(2))
                if not run.a_train and end_w - run.start >= self.n_a:
                    seg = self._segment(c, end_w - self.n_a, end_w)
                    ok, f, _ = cls.is_a_train(seg, self.fs, s.a_train_hz, s.a_train_concentration)
                    run.a_checks = run.a_checks + 1 if ok else 0
                    if run.a_checks >= A_TRAIN_CHECKS:  # one window by chance is not a train
                        run.a_train, run.freq_hz = True, f
                        out.append(self._event(c, "a_train", "onset", run.start, None,
                                               run.peak_uv, f))
                        self._hold_until[f"emg.a_train:{self.names[c]}"] = 1 << 62
                if not run.a_train and end_w - run.start >= BURST_MAX_S * self.fs:
                    out += self._finish(c, run, end_w)
                    self._runs[c] = None
            elif run is not None:
                run.quiet += 1
                if run.quiet >= END_GAP_WINDOWS:
                    out += self._finish(c, run, run.last_active)
                    self._runs[c] = None
        return out

    def _finish(self, c: int, run: _Run, end: int) -> list:
        n = end - run.start
        dur_ms = n * 1e3 / self.fs
        name = self.names[c]
        if run.a_train:
            self.train_time_n[c] += n
            self._hold_until[f"emg.a_train:{name}"] = end + self.n_hold
            return [self._event(c, "a_train", "end", run.start, dur_ms, run.peak_uv, run.freq_hz)]
        if n <= self.n_spike:
            return [self._event(c, "spike", "", run.start, dur_ms, run.peak_uv, None)]
        self._hold_until[f"emg.burst:{name}"] = end + self.n_hold
        return [self._event(c, "burst", "", run.start, dur_ms, run.peak_uv, None)]

    def _segment(self, c: int, a: int, b: int) -> np.ndarray:
        a = max(a - self._hist_start, 0)
        b = max(b - self._hist_start, 0)
        return self._hist[c, a:b]

    def train_time_s(self, c: int, now: int | None = None) -> float:
        n = int(self.train_time_n[c])
        run = self._runs[c]
        if run is not None and run.a_train and now is not None:
            n += max(0, now - run.start)
        return n / self.fs

    def _event(self, c: int, kind: str, phase: str, start: int, dur_ms: float | None,
               peak_uv: float, freq: float | None) -> EmgEvent:
        snip = self._segment(c, start - self.n_snip, start + self.n_snip)
        t0 = max(start - self.n_snip, self._hist_start) / self.fs
        name = self.names[c] if kind != "cautery" else ""
        return EmgEvent(start / self.fs, name, kind, phase, dur_ms, peak_uv, freq,
                        self.train_time_s(c), t0, self.fs, snip)

    # -- conditions and trend ---------------------------------------------------------------
    def _conditions(self, now: int) -> list[Condition]:
        s = self.s
        t_s = now / self.fs
        out: list[Condition] = []
        if not (self.active or self._hold_until or self.train_time_n.any()
                or any(r is not None and r.a_train for r in self._runs)):
            return out  # nothing has happened yet: the common case, kept cheap
        for c, name in enumerate(self.names):
            tt = self.train_time_s(c, now)
            prio = (Priority.HIGH if tt >= s.train_time_alarm_s else
                    Priority.MEDIUM if tt >= s.train_time_warning_s else None)
            ev = {"channel": name, "train_time_s": round(tt, 3),
                  "warning_s": s.train_time_warning_s, "alarm_s": s.train_time_alarm_s}
            cid = f"emg.train_time:{name}"
            if prio is not None and (cid not in self.active or self._prio.get(cid) != prio):
                out.append(Condition(cid, Kind.PHYSIOLOGICAL, prio, True, t_s, name,
                                     f"EMG {name}: A-train time {tt:.1f} s", ev))
                self.active.add(cid)
                self._prio[cid] = prio
            for kind, msg in (("a_train", "A-train (nerve irritation)"),
                              ("burst", "EMG bursts (nerve contact)")):
                cid = f"emg.{kind}:{name}"
                on = now < self._hold_until.get(cid, -1)
                if on and cid not in self.active:
                    out.append(Condition(cid, Kind.PHYSIOLOGICAL, Priority.MEDIUM, True, t_s,
                                         name, f"EMG {name}: {msg}", ev))
                    self.active.add(cid)
                elif not on and cid in self.active:
                    out.append(Condition(cid, Kind.PHYSIOLOGICAL, Priority.MEDIUM, False, t_s,
                                         name, f"EMG {name}: {msg} ended", ev))
                    self.active.discard(cid)
        return out

    def _trend(self, now: int) -> EmgTrend:
        k = max(self._trend_k, 1)
        caut_s = self._trend_caut * self.n_win / self.fs
        chans = {n: {"rms_uv": round(float(self._trend_sum[c] / k), 2),
                     "background_uv": round(float(self.bg[c]), 2) if np.isfinite(self.bg[c])
                     else None,
                     "train_time_s": round(self.train_time_s(c, now), 3)}
                 for c, n in enumerate(self.names)}
        for d in chans.values():
            d["cautery_s"] = round(caut_s, 3)
        self._trend_sum[:] = 0
        self._trend_k = 0
        self._trend_caut = 0
        return EmgTrend(now / self.fs, chans, self._in_cautery)
