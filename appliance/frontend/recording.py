"""`RecordingFrontEnd`: an EDF/EDF+/BDF/BDF+ file played as a front end.

Blocks of `frontend.block_ms` come out as fast as they are asked for, or paced at the sample
rate (`frontend.realtime`). Stimulus events, in the block's `trigger` bits:
  - from a trigger channel when the file has one (label 'Status' as BioSemi writes it, or
    'Trigger'/'STI 014'): its low 16 bits, sample exact;
  - and from EDF+/BDF+ annotations, unless the trigger channel already shows the same bit within
    2 samples (our own files carry both; a Status channel left at zero is filled): the texts
    "stim bit N" (what our BdfWriter writes),
    "stimulus N", "trigger N", "bit N", "TN" (e.g. PhysioNet's T0/T1/T2) set bit N as a
    one-sample pulse at the annotation's onset; `annotation_bits` maps other texts explicitly
    (text -> bit); from_config adds each analysis site's name -> its trigger_bit (an
    annotation "L median" marks a stimulus of that site), as `ionm replay` does.
    Other annotations (alarms, notes) are not stimuli.
Either way `frontend.trigger_mask` keeps only the bits it names.
Channels: `frontend.channels` picks and orders the file's channels by label (an empty list
takes them all); a missing label is a FrontEndError naming what the file has.
A truncated or corrupt file is a RecordingError naming the file and what is wrong.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from appliance.errors import FrontEndError
from appliance.frontend.bdf import NO_DATA_LABEL, BdfReader
from appliance.frontend.block import FrontEndHealth, SampleBlock

log = logging.getLogger(__name__)

_STIM_TEXT = re.compile(r"^\s*(?:stim(?:ulus)?(?:\s*bit)?|trigger|bit|t)\s*#?\s*(\d{1,2})\s*$",
                        re.IGNORECASE)


def annotation_bit(text: str, mapping: Mapping[str, int] | None = None) -> int | None:
    """The trigger bit an annotation text stands for, or None when it is not a stimulus.
    `mapping` keys match whole texts, ignoring case and surrounding spaces."""
    if mapping:
        key = text.strip().lower()
        for k, bit in mapping.items():
            if k.strip().lower() == key:
                return int(bit)
    m = _STIM_TEXT.match(text)
    if m and int(m.group(1)) < 16:
        return int(m.group(1))
    return None


class RecordingFrontEnd:
    def __init__(
        self,
        path: str,
        block_samples: int,
        *,
        channels: tuple[str, ...] = (),
        realtime: bool = True,
        trigger_mask: int = 0xFFFF,
        annotation_bits: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.reader = BdfReader(path)  # RecordingError for a truncated or corrupt file
        self.path = path
        names = self.reader.channel_names
        if channels:
            missing = [c for c in channels if c not in names]
            if missing:
                raise FrontEndError(
                    f"frontend.channels: {missing} not in recording {path!r}, which has "
                    f"{list(names)}; set frontend.channels to some of these (or [] for all)."
                )
            self._pick = [names.index(c) for c in channels]
            self.channel_names = tuple(channels)
        else:
            self._pick = list(range(len(names)))
            self.channel_names = tuple(names)
        self.sample_rate_hz = float(self.reader.sample_rate_hz)
        self.block_samples = max(1, int(block_samples))
        self.realtime = realtime
        self.trigger_mask = int(trigger_mask) & 0xFFFF
        self.clock, self.sleep = clock, sleep
        self.health = FrontEndHealth()
        self.finished = False
        self.n_samples = self.reader.n_samples
        has_channel = self.reader.trigger_idx is not None
        self.trigger_source = "channel" if has_channel else "annotations"
        self.annotations = self.reader.read_annotations()
        self.unmapped_annotations: dict[str, int] = {}
        self._event_samples, self._event_bits = self._annotation_events(annotation_bits)
        self._chunk_records = max(1, int(np.ceil(2.0 / self.reader.record_duration_s)))
        self._buf: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._buf_first = 0  # stream index of the buffer's first sample
        self._next_record = 0
        self._next_sample = 0
        self._t0: float | None = None

    @classmethod
    def from_config(cls, cfg: Any, realtime: bool | None = None,
                    annotation_bits: Mapping[str, int] | None = None) -> RecordingFrontEnd:
        f = cfg.frontend
        if not f.recording_path:
            raise FrontEndError(
                "frontend.recording_path: empty; kind='recording' needs an EDF/BDF(+) file."
            )
        probe = BdfReader(f.recording_path)
        if probe.sample_rate_hz != f.sample_rate_hz:
            log.warning("%s: recorded at %g Hz, frontend.sample_rate_hz is %d; playing at %g Hz",
                        f.recording_path, probe.sample_rate_hz, f.sample_rate_hz,
                        probe.sample_rate_hz)
        n = max(1, int(round(f.block_ms * probe.sample_rate_hz / 1000.0)))
        bits = {site.name: site.trigger_bit for site in cfg.analysis.sites}
        bits.update(annotation_bits or {})
        return cls(f.recording_path, n, channels=tuple(f.channels),
                   realtime=f.realtime if realtime is None else realtime,
                   trigger_mask=f.trigger_mask, annotation_bits=bits)

    def _annotation_events(self, mapping: Mapping[str, int] | None
                           ) -> tuple[np.ndarray, np.ndarray]:
        samples, bits = [], []
        for a in self.annotations:
            bit = annotation_bit(a.text, mapping)
            if bit is None and a.text.startswith(NO_DATA_LABEL):
                continue  # gaps and padding the writer marked: not a stimulus candidate
            if bit is None:
                self.unmapped_annotations[a.text] = self.unmapped_annotations.get(a.text, 0) + 1
                continue
            samples.append(int(round(a.onset_s * self.sample_rate_hz)))
            bits.append(1 << bit)
        order = np.argsort(samples, kind="stable")
        samples_a = np.asarray(samples, np.int64)[order]
        bits_a = np.asarray(bits, np.uint16)[order]
        if samples_a.size and self.trigger_source == "channel":
            self.trigger_source = "channel+annotations"
        # every trigger bit some annotation stands for (a site whose bit is not here and no
        # trigger channel: its stimuli are named differently in this recording)
        self.annotated_bits = int(np.bitwise_or.reduce(bits_a)) if bits_a.size else 0
        return samples_a, bits_a

    def start(self) -> None:
        self._t0 = self.clock() - self._next_sample / self.sample_rate_hz
        self.health.connected = True

    def _fill(self, need: int) -> None:
        """Make the buffer hold at least `need` samples from _next_sample, if the file has them."""
        have = 0 if self._buf is None else self._buf[0].shape[1] - (
            self._next_sample - self._buf_first)
        if have >= need or self._next_record >= self.reader.n_records:
            return
        data, trig, sat, _ = self.reader.read_records(self._next_record, self._chunk_records)
        self._next_record += self._chunk_records
        data, sat = data[self._pick], sat[self._pick]
        if self._buf is not None:
            keep = self._next_sample - self._buf_first
            data = np.concatenate([self._buf[0][:, keep:], data], axis=1)
            trig = np.concatenate([self._buf[1][keep:], trig])
            sat = np.concatenate([self._buf[2][:, keep:], sat], axis=1)
        self._buf, self._buf_first = (data, trig, sat), self._next_sample
        self._fill(need)

    def read_block(self, timeout_s: float | None = None) -> SampleBlock | None:
        if self._t0 is None:
            raise FrontEndError(f"recording {self.path!r}: read_block() before start().")
        if self.finished:
            return None
        self._fill(self.block_samples)
        first = self._next_sample
        n = min(self.block_samples, self.n_samples - first)
        if n <= 0 or self._buf is None:
            self.finished = True
            return None
        if self.realtime:
            wait = self._t0 + (first + n) / self.sample_rate_hz - self.clock()
            if timeout_s is not None and wait > timeout_s:
                self.sleep(max(timeout_s, 0.0))
                return None
            if wait > 0:
                self.sleep(wait)
        i = first - self._buf_first
        data = self._buf[0][:, i : i + n]
        sat = self._buf[2][:, i : i + n]
        if self.reader.trigger_idx is not None:
            trig = self._buf[1][i : i + n].copy()
        else:
            trig = np.zeros(n, np.uint16)
        lo, hi = np.searchsorted(self._event_samples, [first, first + n])
        for s, bit in zip(self._event_samples[lo:hi] - first, self._event_bits[lo:hi],
                          strict=True):
            # an annotated stimulus the trigger channel already shows (within 2 samples) is
            # the same event; one it lacks (a Status channel left at zero) is added
            if not (trig[max(0, s - 2) : s + 3] & bit).any():
                trig[s] |= bit
        trig &= self.trigger_mask
        self._next_sample = first + n
        self.health.samples += n
        return SampleBlock(data, trig.astype(np.uint16), sat, np.zeros(len(self._pick), bool),
                           first, self.sample_rate_hz, self.clock())

    def stop(self) -> None:
        self.health.connected = False

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> RecordingFrontEnd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
