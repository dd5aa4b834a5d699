"""BDF+ writer and EDF/EDF+/BDF/BDF+ reader.

Writer: 24-bit BDF+ ('\\xffBIOSEMI' version field, "BDF+C" in the reserved field), 1-s data
records, every channel in µV, a BioSemi-style 'Status' channel with the trigger bits, and a
'BDF Annotations' channel whose TALs carry stimulus events (rising trigger edges), alarm events
and anything else passed to `annotate()`. Each whole record is appended (and fsync'ed) before
the header's record count is rewritten, so after SIGKILL or power loss the header never claims
data that is not on disk: the file is readable up to the last whole second.

Reader (`read_recording`, `BdfReader`, `Recording`, `Annotation`): in bdf_reader.py, re-exported
here so `appliance.frontend.bdf` is the one name others import.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from appliance.errors import RecordingError
from appliance.frontend.bdf_reader import (  # noqa: F401 - re-exported: the contract's names
    BDF_DIGITAL_MAX,
    BDF_DIGITAL_MIN,
    COUNT_OFFSET,
    STATUS_LABEL,
    Annotation,
    BdfReader,
    Recording,
    read_recording,
)
from appliance.frontend.block import SampleBlock

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

# Gap and discontinuity annotations start with MNE's label for acquisition skips: MNE (and
# tools that honour its "BAD" convention) then drop epochs over them and shade them in plots; to
# such readers the digital minimum is otherwise an ordinary, if large, value.
NO_DATA_LABEL = "BAD_ACQ_SKIP"


def _ascii(text: str, width: int) -> bytes:
    """A header field: printable ASCII, space padded; other characters become '_'."""
    clean = "".join(c if 32 <= ord(c) < 127 else "_" for c in text)
    return clean[:width].ljust(width).encode("ascii")


def _num(x: float, width: int = 8) -> str:
    """Shortest decimal rendering of x that fits `width` characters (header number fields)."""
    if float(x).is_integer() and len(str(int(x))) <= width:
        return str(int(x))
    for decimals in range(width, -1, -1):
        s = f"{x:.{decimals}f}".rstrip("0").rstrip(".")
        if len(s) <= width:
            return s
    raise RecordingError(f"BDF header: number {x!r} does not fit {width} characters.")


# ----------------------------------------------------------------------------------------- writer


class BdfWriter:
    """Write a BDF+ file one 1-s data record at a time.

    channel_names    one label per row of data_uv (up to 16 ASCII characters each)
    sample_rate_hz   must be a whole number (1-s records hold whole samples)
    physical_max_uv  the digital range ±2^23 maps to ±physical_max_uv; pass the ADC's full
                     scale (4.5e6 / gain µV for the ADS1299) to keep its resolution exactly;
                     the default keeps 0.031 µV resolution over ±262 mV
    trigger_channel  also store the trigger bits in a 'Status' channel (sample exact replay)
    annotate_triggers  add a "stim bit N" annotation at every rising edge of trigger bit N
    max_annotations_per_s  sizes the annotation channel; overflow carries into later records
    fsync            fsync each record before the header count is updated (power-loss safety)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        channel_names: Sequence[str],
        sample_rate_hz: float,
        *,
        physical_max_uv: float = 262144.0,
        start_utc: dt.datetime | None = None,
        patient: str = "X X X X",
        recording: str = "X X X",
        trigger_channel: bool = True,
        annotate_triggers: bool = True,
        max_annotations_per_s: int = 64,
        fsync: bool = True,
    ) -> None:
        fs = float(sample_rate_hz)
        if fs <= 0 or not fs.is_integer():
            raise RecordingError(
                f"BdfWriter {str(path)!r}: sample_rate_hz must be a positive whole number for "
                f"1-s data records, got {sample_rate_hz!r}."
            )
        if not channel_names:
            raise RecordingError(f"BdfWriter {str(path)!r}: no channels to record.")
        self.path = Path(path)
        self.channel_names = tuple(channel_names)
        self.sample_rate_hz = fs
        self.n_per_record = int(fs)
        self.fsync = fsync
        self.trigger_channel = trigger_channel
        self.annotate_triggers = annotate_triggers
        self.start_utc = (start_utc or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        self.records_written = 0
        self.clipped_samples = 0
        self.annotations_dropped = 0
        self._closed = False
        self._failed = False  # a write failed: the file ends at the last whole record
        self._n_ch = len(self.channel_names)
        # samples not yet in a record, as a list of chunks (one concatenation per record)
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []
        self._buffered = 0
        self._next_sample: int | None = None  # stream index expected next (gap detection)
        self._first_sample = 0
        self._prev_trig = 0
        self._pending: list[bytes] = []  # TALs waiting for room in a record
        self._annot_bytes = 3 * int(np.ceil((24 + 40 * max_annotations_per_s) / 3))

        pmax = _num(physical_max_uv)
        pmin = _num(-float(pmax))
        self._phys = (float(pmin), float(pmax))
        self._scale = (self._phys[1] - self._phys[0]) / (BDF_DIGITAL_MAX - BDF_DIGITAL_MIN)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        header = self._header(patient, recording, pmin, pmax)
        self._header_bytes = len(header)
        try:
            os.write(self._fd, header)
            if fsync:
                os.fsync(self._fd)
        except OSError:
            os.close(self._fd)
            raise

    def __enter__(self) -> BdfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def duration_s(self) -> float:
        """Seconds committed to the file (whole records)."""
        return float(self.records_written)

    @property
    def elapsed_s(self) -> float:
        """Seconds of samples received so far (committed or still buffered)."""
        return 0.0 if self._next_sample is None else self._onset(self._next_sample)

    def _signals(self) -> list[tuple[str, str, str, str, str, int]]:
        """(label, transducer, unit, physical min, physical max, samples per record)."""
        pmin, pmax = _num(self._phys[0]), _num(self._phys[1])
        n = self.n_per_record
        sig = [(name, "AgAgCl electrode", "uV", pmin, pmax, n) for name in self.channel_names]
        if self.trigger_channel:
            sig.append((STATUS_LABEL, "Triggers and Status", "Boolean",
                        str(BDF_DIGITAL_MIN), str(BDF_DIGITAL_MAX), n))
        sig.append(("BDF Annotations", "", "", "-1", "1", self._annot_bytes // 3))
        return sig

    def _header(self, patient: str, recording: str, pmin: str, pmax: str) -> bytes:
        sig = self._signals()
        ns = len(sig)
        t = self.start_utc
        rec = f"Startdate {t.day:02d}-{_MONTHS[t.month - 1]}-{t.year} {recording}"
        head = (
            b"\xffBIOSEMI"
            + _ascii(patient, 80)
            + _ascii(rec, 80)
            + _ascii(t.strftime("%d.%m.%y"), 8)
            + _ascii(t.strftime("%H.%M.%S"), 8)
            + _ascii(str(256 * (ns + 1)), 8)
            + _ascii("BDF+C", 44)
            + _ascii("0", 8)
            + _ascii("1", 8)
            + _ascii(str(ns), 4)
        )
        cols = [
            [_ascii(s[0], 16) for s in sig],
            [_ascii(s[1], 80) for s in sig],
            [_ascii(s[2], 8) for s in sig],
            [_ascii(s[3], 8) for s in sig],
            [_ascii(s[4], 8) for s in sig],
            [_ascii(str(BDF_DIGITAL_MIN), 8)] * ns,
            [_ascii(str(BDF_DIGITAL_MAX), 8)] * ns,
            [_ascii("", 80)] * ns,
            [_ascii(str(s[5]), 8) for s in sig],
            [_ascii("", 32)] * ns,
        ]
        out = head + b"".join(b"".join(c) for c in cols)
        assert len(out) == 256 * (ns + 1)  # noqa: S101 - internal invariant of the layout above
        return out

    # -- data in

    def write(self, block: SampleBlock) -> None:
        """Append a block; a jump in first_sample (missed samples) is filled and annotated."""
        self.write_samples(block.data_uv, block.trigger, block.first_sample)

    def write_samples(
        self,
        data_uv: np.ndarray,
        trigger: np.ndarray | None = None,
        first_sample: int | None = None,
    ) -> None:
        if self._closed:
            raise RecordingError(f"BdfWriter {str(self.path)!r}: write after close().")
        data_uv = np.asarray(data_uv, dtype=np.float64)
        if data_uv.ndim != 2 or data_uv.shape[0] != self._n_ch:
            raise RecordingError(
                f"BdfWriter {str(self.path)!r}: data_uv must be ({self._n_ch}, n), "
                f"got shape {data_uv.shape}."
            )
        n = data_uv.shape[1]
        trig = np.zeros(n, np.uint16) if trigger is None else np.asarray(trigger, np.uint16)
        if self._next_sample is None:
            self._first_sample = self._next_sample = first_sample or 0
        elif first_sample is not None and first_sample != self._next_sample:
            self._fill_gap(first_sample)
        self._stimulus_annotations(trig)
        self._append(data_uv, trig)
        self._next_sample = (self._next_sample or 0) + n
        self._flush_records()

    def _fill_gap(self, first_sample: int) -> None:
        gap = first_sample - (self._next_sample or 0)
        t = self._onset(self._next_sample or 0)
        if gap < 0 or gap > 60 * self.n_per_record:
            # overlap or a long outage: not filled, so later times in this file are shifted
            self.annotate(t, 0.0, f"{NO_DATA_LABEL} discontinuity: stream jumped by {gap} samples "
                          "(not filled)")
            self._next_sample = first_sample
            return
        self.annotate(t, gap / self.sample_rate_hz,
                      f"{NO_DATA_LABEL} gap: {gap} missed samples (no data: digital minimum)")
        self._append_no_data(gap)
        self._prev_trig = 0
        self._next_sample = first_sample

    def _append_no_data(self, n: int) -> None:
        """Samples that were never acquired (a gap, the padding of the last record): every
        channel at the digital minimum (readers see it as saturated, so no average takes it),
        no trigger, and an annotation says so. Never a held or invented value. (A Status bit
        would be cleaner but standard readers, e.g. MNE's find_events, take it as an event.)"""
        self._chunks.append((np.full((self._n_ch, n), self._phys[0]), np.zeros(n, np.uint16)))
        self._buffered += n

    def _append(self, uv: np.ndarray, trig: np.ndarray) -> None:
        if uv.shape[1]:
            self._chunks.append((uv, trig))
            self._buffered += uv.shape[1]

    def _onset(self, sample: int) -> float:
        return (sample - self._first_sample) / self.sample_rate_hz

    def _stimulus_annotations(self, trig: np.ndarray) -> None:
        if not self.annotate_triggers or trig.size == 0:
            return
        prev = np.concatenate([[self._prev_trig], trig[:-1]]).astype(np.uint16)
        rising = trig & ~prev
        self._prev_trig = int(trig[-1])
        idx = np.flatnonzero(rising)
        if idx.size == 0:
            return
        base = self._next_sample or 0
        bits = (rising[idx, None] >> np.arange(16, dtype=np.uint16)) & 1  # (k, 16)
        for i, b in zip(*np.nonzero(bits), strict=True):
            self.annotate(self._onset(base + int(idx[i])), 0.0, f"stim bit {int(b)}")

    def annotate(self, onset_s: float, duration_s: float, text: str) -> None:
        """Add an annotation; onset in seconds since the file start (clamped at 0)."""
        clean = "".join(c if c.isprintable() else " " for c in text).encode("utf-8")
        clean = clean.replace(b"\x14", b" ").replace(b"\x15", b" ")[:200]
        dur = f"\x15{duration_s:.6f}".rstrip("0").rstrip(".") if duration_s > 0 else ""
        on = f"{max(0.0, onset_s):.7f}".rstrip("0").rstrip(".")
        tal = f"+{on}{dur}\x14".encode() + clean + b"\x14\x00"
        if len(self._pending) > 100_000:  # something annotates far faster than records drain
            self.annotations_dropped += 1
            return
        self._pending.append(tal)

    # -- records out

    def _flush_records(self) -> None:
        n = self.n_per_record
        k = self._buffered // n
        if k == 0:
            return
        all_uv = np.concatenate([c[0] for c in self._chunks], axis=1)
        all_trig = np.concatenate([c[1] for c in self._chunks])
        uv, trig = all_uv[:, : k * n], all_trig[: k * n]
        self._chunks = [(all_uv[:, k * n :], all_trig[k * n :])]
        self._buffered -= k * n
        dig = np.rint((uv - self._phys[0]) / self._scale + BDF_DIGITAL_MIN)
        over = (dig < BDF_DIGITAL_MIN) | (dig > BDF_DIGITAL_MAX)
        self.clipped_samples += int(np.count_nonzero(over))
        dig = np.clip(dig, BDF_DIGITAL_MIN, BDF_DIGITAL_MAX).astype(np.int32)
        rows = [dig]
        if self.trigger_channel:
            rows.append(trig.astype(np.int32)[None, :])
        allsig = np.concatenate(rows, axis=0)
        allsig = allsig.reshape(allsig.shape[0], k, n)
        # (n_sig, k, n) -> (k, n_sig, n) -> 24-bit little endian bytes per record
        per_record = np.ascontiguousarray(allsig.transpose(1, 0, 2), dtype="<i4")
        le = per_record.view(np.uint8).reshape(k, -1, 4)[:, :, :3]
        le = le.reshape(k, -1)
        for r in range(k):
            self._write_record(le[r].tobytes() + self._annotation_bytes())

    def _annotation_bytes(self) -> bytes:
        onset = self.records_written
        out = bytearray(f"+{onset}\x14\x14\x00".encode())  # time-keeping TAL
        while self._pending and len(out) + len(self._pending[0]) <= self._annot_bytes:
            out += self._pending.pop(0)
        return bytes(out.ljust(self._annot_bytes, b"\x00"))

    def _write_record(self, payload: bytes) -> None:
        if self._failed:
            raise RecordingError(f"BdfWriter {str(self.path)!r}: an earlier write failed.")
        try:
            view = memoryview(payload)
            while view:  # a short write (disk full) must not leave a misaligned record
                view = view[os.write(self._fd, view) :]
            if self.fsync:
                os.fsync(self._fd)  # data on disk before the header may count it
            os.pwrite(self._fd, _ascii(str(self.records_written + 1), 8), COUNT_OFFSET)
        except OSError:
            # keep the file consistent: drop the partial record, write nothing more
            self._failed = True
            try:
                os.ftruncate(self._fd, self._header_bytes + self.records_written * len(payload))
            except OSError:
                pass  # the count still covers only whole records; readers ignore the tail
            raise
        self.records_written += 1

    def close(self) -> None:
        """Write the last partial second (padded with no-data samples) and close."""
        if self._closed:
            return
        try:
            if self._failed:
                return
            if self._buffered:
                end_s = self._onset(self._next_sample or 0)
                pad = self.n_per_record - self._buffered
                self.annotate(end_s, 0.0, "recording end")
                if pad:  # MNE would average the padding's digital minimum in as data
                    self.annotate(end_s, pad / self.sample_rate_hz,
                                  f"{NO_DATA_LABEL} padding: {pad} samples after the end (no data)")
                self._append_no_data(pad)
                self._flush_records()
            while self._pending and self.records_written > 0:
                # annotations still waiting: one more record, marked as no data
                self._append_no_data(self.n_per_record)
                self._flush_records()
            if self.fsync:
                os.fsync(self._fd)
        finally:
            self._closed = True
            os.close(self._fd)
