"""Sweeps cut around stimulus events from a stream of blocks, and baseline correction."""

from __future__ import annotations

import numpy as np


def times_ms(pre_samples: int, post_samples: int, fs_hz: float) -> np.ndarray:
    """Time of each sweep sample relative to the stimulus: (pre+post,) float64 ms.

    The stimulus sample is at index `pre_samples` (t = 0).
    """
    return (np.arange(-pre_samples, post_samples, dtype=np.float64)) * (1e3 / fs_hz)


def baseline_correct(sweeps: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Subtract the mean of samples [start, stop) along the last axis (the pre-stimulus part).

    sweeps (..., n_times) -> same shape float64 (a new array).
    """
    x = np.asarray(sweeps, dtype=np.float64)
    if not 0 <= start < stop <= x.shape[-1]:
        raise ValueError(f"baseline [{start}, {stop}) must lie within n_times={x.shape[-1]}")
    return x - x[..., start:stop].mean(axis=-1, keepdims=True)


class Epocher:
    """Cut sweeps [event - pre - pad, event + post + pad) from consecutive blocks.

    `push(data (n_channels, n), first_sample, event_samples (k,)) -> (sweeps, events)` with
    sweeps (m, n_channels, pre + post + 2*pad) and events (m,) int64: every sweep whose last
    sample has arrived, in event order. A sweep that runs past the block waits for the next
    one. Sweeps that would need samples before the stream started, or lost in a gap
    (first_sample jumps), cannot be cut: they are counted in `dropped`.

    Samples live in a ring buffer (sample i at column i % capacity), so a block costs one copy
    of itself, not of the history. `dtype` lets the same class cut the saturation mask
    (dtype=bool).
    """

    def __init__(self, pre_samples: int, post_samples: int, n_channels: int,
                 pad_samples: int = 0, dtype=np.float64) -> None:
        if pre_samples < 0 or post_samples < 1 or pad_samples < 0:
            raise ValueError(
                "need pre_samples >= 0, post_samples >= 1, pad_samples >= 0; got "
                f"{pre_samples!r}, {post_samples!r}, {pad_samples!r}"
            )
        self.pre = int(pre_samples)
        self.post = int(post_samples)
        self.pad = int(pad_samples)
        self.n_channels = int(n_channels)
        self.n_times = self.pre + self.post + 2 * self.pad
        self.dtype = np.dtype(dtype)
        self.dropped = 0
        self._ring = np.zeros((self.n_channels, 2 * self.n_times), dtype=self.dtype)
        self.reset()

    def reset(self) -> None:
        self._end: int | None = None  # absolute index one past the newest sample held
        self._held = 0  # how many samples before _end are valid
        self._pending = np.empty(0, dtype=np.int64)

    def _write(self, data: np.ndarray, first_sample: int) -> None:
        n = data.shape[1]
        cap = self._ring.shape[1]
        if n + self.n_times > cap:  # grow so a block plus one sweep always fits
            cap = 2 * (n + self.n_times)
            ring = np.zeros((self.n_channels, cap), dtype=self.dtype)
            keep = min(self._held, self.n_times)
            if keep:
                old = np.arange(self._end - keep, self._end)
                ring[:, old % cap] = self._ring[:, old % self._ring.shape[1]]
            self._ring, self._held = ring, keep
        a = first_sample % cap
        first = min(n, cap - a)
        self._ring[:, a:a + first] = data[:, :first]
        self._ring[:, :n - first] = data[:, first:]
        self._end = first_sample + n
        self._held = min(cap, self._held + n)

    def push(self, data: np.ndarray, first_sample: int,
             event_samples=()) -> tuple[np.ndarray, np.ndarray]:
        data = np.asarray(data, dtype=self.dtype)
        if data.ndim != 2 or data.shape[0] != self.n_channels:
            raise ValueError(
                f"expected data (n_channels={self.n_channels}, n_samples), got {data.shape}"
            )
        first_sample = int(first_sample)
        if self._end != first_sample:
            self._held = 0  # stream start or a gap: nothing before this block is usable
        self._write(data, first_sample)

        events = np.asarray(event_samples, dtype=np.int64)
        if len(self._pending):
            events = np.concatenate([self._pending, events]) if len(events) else self._pending
        starts = events - (self.pre + self.pad)
        first_start = int(starts.min()) if len(starts) else 0
        if not len(events) or (first_start >= self._end - self._held
                               and first_start + self.n_times > self._end):
            # the common case: nothing to cut yet (events arrive in time order)
            self._pending = events
            return np.empty((0, self.n_channels, self.n_times), self.dtype), events[:0]
        lost = starts < self._end - self._held
        ready = ~lost & (starts + self.n_times <= self._end)
        self.dropped += int(lost.sum())
        self._pending = events[~lost & ~ready]

        idx = (starts[ready, None] + np.arange(self.n_times)) % self._ring.shape[1]
        sweeps = np.ascontiguousarray(self._ring[:, idx].transpose(1, 0, 2))
        return sweeps, events[ready]
