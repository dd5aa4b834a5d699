"""EDF/EDF+/BDF/BDF+ reader: own vectorised parser (no per-sample Python).

Tolerates a record count of -1 or bytes after the last counted record (an interrupted write);
a truncated or corrupt file raises RecordingError naming the file and what is wrong.
`BdfReader` reads records lazily (long files); `read_recording` reads a whole file.
The writer is in appliance/frontend/bdf.py, which also re-exports these names.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field

import numpy as np

from appliance.errors import RecordingError

BDF_DIGITAL_MIN = -8388608
BDF_DIGITAL_MAX = 8388607
EDF_DIGITAL_MIN = -32768
EDF_DIGITAL_MAX = 32767
STATUS_LABEL = "Status"  # BioSemi convention: trigger inputs in the low 16 bits
COUNT_OFFSET = 236  # byte offset of "number of data records" in the header
_UNIT_TO_UV = {"uv": 1.0, "µv": 1.0, "mv": 1e3, "v": 1e6, "nv": 1e-3}
_TRIGGER_LABELS = {"status", "trigger", "sti 014", "sti014", "trig"}
_TAL = re.compile(rb"([+-]\d+(?:\.\d*)?)(?:\x15(\d+(?:\.\d*)?))?\x14(.*?)\x14\x00", re.S)


@dataclass(frozen=True)
class Annotation:
    onset_s: float  # seconds since the file's start
    duration_s: float  # 0 when not given
    text: str


@dataclass
class Recording:
    """A whole recording in memory.

    data_uv      (n_channels, n_samples) float64 µV (voltage channels at the main rate)
    trigger      (n_samples,) uint16: low 16 bits of a Status/trigger channel, zeros if none
    saturated    (n_channels, n_samples) bool: sample at the digital minimum or maximum
    annotations  EDF+/BDF+ annotations (time-keeping TALs excluded)
    """

    path: str
    channel_names: tuple[str, ...]
    sample_rate_hz: float
    data_uv: np.ndarray
    trigger: np.ndarray
    saturated: np.ndarray
    annotations: list[Annotation]
    start_utc: dt.datetime | None
    has_trigger_channel: bool
    notes: list[str] = field(default_factory=list)  # tolerated oddities (count -1, tail bytes)

    @property
    def n_samples(self) -> int:
        return int(self.data_uv.shape[1])


# ----------------------------------------------------------------------------------------- reader


@dataclass(frozen=True)
class _Signal:
    label: str
    unit: str
    phys_min: float
    phys_max: float
    dig_min: int
    dig_max: int
    n_per_record: int
    offset: int  # byte offset inside a record


class BdfReader:
    """Header of an EDF/EDF+/BDF/BDF+ file plus lazy access to its data records."""

    def __init__(self, path: str | os.PathLike[str], strict: bool = True) -> None:
        self.path = str(path)
        self.notes: list[str] = []
        try:
            size = os.path.getsize(self.path)
            with open(self.path, "rb") as f:
                head = f.read(256)
                ns = self._parse_main(head, size)
                sig_head = f.read(256 * ns)
        except OSError as e:
            raise RecordingError(f"{self.path}: cannot read it ({e.strerror}).") from e
        if len(sig_head) < 256 * ns:
            raise RecordingError(
                f"{self.path}: truncated header: {ns} signals need {256 * (ns + 1)} header "
                f"bytes, the file has {size}."
            )
        self.signals = self._parse_signals(sig_head, ns)
        self.record_bytes = sum(s.n_per_record for s in self.signals) * self.bytes_per_sample
        if self.record_bytes <= 0:
            raise RecordingError(f"{self.path}: corrupt header: data records hold no samples.")
        data_bytes = size - self.header_bytes
        whole, tail = divmod(max(data_bytes, 0), self.record_bytes)
        if self.header_records == -1:
            self.notes.append(f"record count -1 in header; {whole} whole records by file size")
            self.n_records = whole
        elif self.header_records > whole:
            msg = (
                f"{self.path}: truncated: the header says {self.header_records} data records of "
                f"{self.record_bytes} bytes, the file holds {data_bytes / self.record_bytes:.2f}."
            )
            if strict:
                raise RecordingError(msg)
            self.notes.append(msg)
            self.n_records = whole
        else:
            self.n_records = self.header_records
            extra = data_bytes - self.n_records * self.record_bytes
            if extra:
                self.notes.append(f"{extra} bytes after the last counted record ignored")
        if self.discontinuous:
            self.notes.append("EDF+D/BDF+D: records are concatenated as if continuous; "
                              "annotation onsets after a discontinuity do not match sample times")
        if tail and self.header_records == -1:
            self.notes.append(f"{tail} bytes of an incomplete last record ignored")
        self._choose_channels()

    def _parse_main(self, head: bytes, size: int) -> int:
        if len(head) < 256:
            raise RecordingError(
                f"{self.path}: truncated header ({size} bytes; an EDF/BDF header is at least 256)."
            )
        if head[:8] == b"\xffBIOSEMI":
            self.is_bdf = True
        elif head[:8] == b"0       ":
            self.is_bdf = False
        else:
            raise RecordingError(
                f"{self.path}: not an EDF or BDF file: version field {head[:8]!r}, expected "
                "'0       ' (EDF) or '\\xffBIOSEMI' (BDF)."
            )
        self.bytes_per_sample = 3 if self.is_bdf else 2
        reserved = head[192:236].decode("ascii", "replace").strip()
        self.plus = reserved.startswith(("EDF+", "BDF+"))
        self.discontinuous = reserved in ("EDF+D", "BDF+D")
        self.header_bytes = self._int(head[184:192], "number of bytes in header")
        self.header_records = self._int(head[236:244], "number of data records")
        self.record_duration_s = self._float(head[244:252], "duration of a data record")
        ns = self._int(head[252:256], "number of signals")
        if ns < 1 or self.header_bytes != 256 * (ns + 1):
            raise RecordingError(
                f"{self.path}: corrupt header: {ns} signals but header size "
                f"{self.header_bytes} (expected {256 * (ns + 1)})."
            )
        if not (np.isfinite(self.record_duration_s) and self.record_duration_s > 0):
            raise RecordingError(
                f"{self.path}: corrupt header: duration of a data record is "
                f"{self.record_duration_s} s (must be a positive number)."
            )
        self.start_utc = self._start(head[168:176], head[176:184])
        return ns

    def _int(self, raw: bytes, what: str) -> int:
        try:
            return int(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise RecordingError(f"{self.path}: corrupt header: {what} is {raw!r}.") from None

    def _float(self, raw: bytes, what: str) -> float:
        try:
            return float(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise RecordingError(f"{self.path}: corrupt header: {what} is {raw!r}.") from None

    def _start(self, date: bytes, time_: bytes) -> dt.datetime | None:
        try:
            d, m, y = (int(x) for x in date.decode("ascii").split("."))
            hh, mm, ss = (int(x) for x in time_.decode("ascii").split("."))
            return dt.datetime(2000 + y if y < 85 else 1900 + y, m, d, hh, mm, ss, tzinfo=dt.UTC)
        except (UnicodeDecodeError, ValueError):
            self.notes.append(f"start date/time {date!r} {time_!r} not understood")
            return None

    def _parse_signals(self, raw: bytes, ns: int) -> list[_Signal]:
        widths = [16, 80, 8, 8, 8, 8, 8, 80, 8, 32]
        cols: list[list[str]] = []
        pos = 0
        for w in widths:
            cols.append(
                [raw[pos + i * w : pos + (i + 1) * w].decode("latin-1").strip() for i in range(ns)]
            )
            pos += w * ns
        out: list[_Signal] = []
        offset = 0
        for i in range(ns):
            label = cols[0][i]
            try:
                pmin, pmax = float(cols[3][i]), float(cols[4][i])
                dmin, dmax, nrec = int(cols[5][i]), int(cols[6][i]), int(cols[8][i])
            except ValueError:
                raise RecordingError(
                    f"{self.path}: corrupt header of signal {i} ({label!r}): physical "
                    f"{cols[3][i]!r}..{cols[4][i]!r}, digital {cols[5][i]!r}..{cols[6][i]!r}, "
                    f"samples per record {cols[8][i]!r}."
                ) from None
            if dmax <= dmin or nrec < 1 or pmax == pmin or not np.isfinite([pmin, pmax]).all():
                raise RecordingError(
                    f"{self.path}: corrupt header of signal {i} ({label!r}): digital range "
                    f"{dmin}..{dmax}, physical {pmin}..{pmax}, {nrec} samples per record."
                )
            out.append(_Signal(label, cols[2][i], pmin, pmax, dmin, dmax, nrec, offset))
            offset += nrec * self.bytes_per_sample
        return out

    def _choose_channels(self) -> None:
        """Voltage channels at the most common rate; a Status/trigger channel; annotations."""
        labels = ("EDF Annotations", "BDF Annotations")
        self.annot_idx = [i for i, s in enumerate(self.signals) if s.label in labels]
        trig = [i for i, s in enumerate(self.signals) if s.label.lower() in _TRIGGER_LABELS]
        volt = [
            i for i, s in enumerate(self.signals)
            if i not in self.annot_idx and i not in trig and s.unit.lower() in _UNIT_TO_UV
        ]
        if not volt:
            raise RecordingError(
                f"{self.path}: no voltage channels (units uV/mV/V); signals: "
                f"{[s.label for s in self.signals]}."
            )
        rates = [self.signals[i].n_per_record for i in volt]
        n_main = max(set(rates), key=rates.count)
        skipped = [self.signals[i].label for i in volt if self.signals[i].n_per_record != n_main]
        if skipped:
            self.notes.append(f"channels at another sample rate skipped: {skipped}")
        self.data_idx = [i for i in volt if self.signals[i].n_per_record == n_main]
        self.trigger_idx = next((i for i in trig if self.signals[i].n_per_record == n_main), None)
        self.n_per_record = n_main
        self.sample_rate_hz = n_main / self.record_duration_s
        self.channel_names = tuple(self.signals[i].label for i in self.data_idx)

    @property
    def n_samples(self) -> int:
        return self.n_records * self.n_per_record

    def read_records(
        self, start: int, count: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Annotation]]:
        """(data_uv (n_ch, count * n), trigger (count * n,), saturated, annotations)."""
        count = max(0, min(count, self.n_records - start))
        with open(self.path, "rb") as f:
            f.seek(self.header_bytes + start * self.record_bytes)
            raw = f.read(count * self.record_bytes)
        if len(raw) < count * self.record_bytes:
            raise RecordingError(f"{self.path}: truncated while reading record {start}.")
        rec = np.frombuffer(raw, np.uint8).reshape(count, self.record_bytes)
        data = np.empty((len(self.data_idx), count * self.n_per_record))
        sat = np.empty(data.shape, bool)
        for row, i in enumerate(self.data_idx):
            s = self.signals[i]
            dig = self._digital(rec, s)
            data[row] = (dig - s.dig_min) * ((s.phys_max - s.phys_min) / (s.dig_max - s.dig_min))
            data[row] += s.phys_min
            data[row] *= _UNIT_TO_UV[s.unit.lower()]
            sat[row] = (dig <= s.dig_min) | (dig >= s.dig_max)
        if self.trigger_idx is not None:
            trig = (self._digital(rec, self.signals[self.trigger_idx]) & 0xFFFF).astype(np.uint16)
        else:
            trig = np.zeros(count * self.n_per_record, np.uint16)
        annots: list[Annotation] = []
        for i in self.annot_idx:
            s = self.signals[i]
            nb = s.n_per_record * self.bytes_per_sample
            for r in range(count):
                annots += self._parse_tals(rec[r, s.offset : s.offset + nb].tobytes(), start + r)
        return data, trig, sat, annots

    def read_annotations(self) -> list[Annotation]:
        """Every annotation in the file, reading only the annotation signal of each record."""
        out: list[Annotation] = []
        if not self.annot_idx:
            return out
        with open(self.path, "rb") as f:
            for r in range(self.n_records):
                base = self.header_bytes + r * self.record_bytes
                for i in self.annot_idx:
                    s = self.signals[i]
                    f.seek(base + s.offset)
                    out += self._parse_tals(f.read(s.n_per_record * self.bytes_per_sample), r)
        return out

    def _digital(self, rec: np.ndarray, s: _Signal) -> np.ndarray:
        nb = s.n_per_record * self.bytes_per_sample
        b = rec[:, s.offset : s.offset + nb].reshape(-1, self.bytes_per_sample).astype(np.int32)
        if self.is_bdf:
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            return np.where(v >= 1 << 23, v - (1 << 24), v)
        v = b[:, 0] | (b[:, 1] << 8)
        return np.where(v >= 1 << 15, v - (1 << 16), v)

    def _parse_tals(self, raw: bytes, record: int) -> list[Annotation]:
        out: list[Annotation] = []
        for m in _TAL.finditer(raw):
            texts = [t for t in m.group(3).split(b"\x14") if t]
            onset = float(m.group(1))
            dur = float(m.group(2)) if m.group(2) else 0.0
            for t in texts:
                out.append(Annotation(onset, dur, t.decode("utf-8", "replace")))
        if self.plus and raw[:1] not in (b"+", b"-"):
            self.notes.append(f"record {record}: annotation signal lacks its time-keeping TAL")
        return out


def read_recording(path: str | os.PathLike[str], strict: bool = True) -> Recording:
    """Read a whole EDF/EDF+/BDF/BDF+ file. strict=False reads what is there of a truncated file
    (noted in .notes) instead of raising RecordingError."""
    r = BdfReader(path, strict=strict)
    data, trig, sat, annots = r.read_records(0, r.n_records)
    return Recording(
        path=r.path,
        channel_names=r.channel_names,
        sample_rate_hz=r.sample_rate_hz,
        data_uv=data,
        trigger=trig,
        saturated=sat,
        annotations=annots,
        start_utc=r.start_utc,
        has_trigger_channel=r.trigger_idx is not None,
        notes=r.notes,
    )
