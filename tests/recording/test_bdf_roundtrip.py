"""BDF+ round trip: our writer -> MNE-Python, pyedflib and our reader agree on µV, triggers and
annotations; truncated and corrupt files give a RecordingError naming the problem."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import mne
import numpy as np
import pyedflib
import pytest

from appliance.errors import RecordingError
from appliance.frontend.bdf import BdfWriter, read_recording
from appliance.frontend.block import SampleBlock

FS = 1000
NAMES = ["C3'-Fz", "C4'-Fz", "Erb-L"]


def _signal(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    uv = rng.normal(0.0, 30.0, (len(NAMES), n))
    uv[2] *= 1000.0  # tens of mV: still inside ±262 mV
    trig = np.zeros(n, np.uint16)
    trig[np.arange(50, n, 213)] = 1
    trig[np.arange(120, n, 487)] |= 4
    return uv, trig


def _write(path: Path, uv: np.ndarray, trig: np.ndarray, block: int = 64) -> BdfWriter:
    w = BdfWriter(path, NAMES, FS)
    for i in range(0, uv.shape[1], block):
        b = SampleBlock(
            data_uv=uv[:, i : i + block],
            trigger=trig[i : i + block],
            saturated=np.zeros((len(NAMES), min(block, uv.shape[1] - i)), bool),
            lead_off=np.zeros(len(NAMES), bool),
            first_sample=i,
            sample_rate_hz=FS,
            t_monotonic_s=0.0,
        )
        w.write(b)
    w.annotate(1.5, 0.25, "alarm raised: ssep.amplitude:L median:N20 high")
    w.close()
    return w


def test_bdf_round_trip_mne_pyedflib_and_ours(tmp_path: Path) -> None:
    n = 3 * FS + 400
    uv, trig = _signal(n)
    path = tmp_path / "rt.bdf"
    w = _write(path, uv, trig)
    lsb_uv = 2 * 262144.0 / (2**24 - 1)

    raw = mne.io.read_raw_bdf(path, preload=True, verbose="error")
    assert raw.info["sfreq"] == FS and raw.n_times == 4 * FS
    mne_uv = raw.get_data(picks=NAMES) * 1e6
    np.testing.assert_allclose(mne_uv[:, :n], uv, atol=lsb_uv)
    events = mne.find_events(raw, stim_channel="Status", verbose=False)
    np.testing.assert_array_equal(events[:, 0], np.flatnonzero(trig))
    mne_texts = list(raw.annotations.description)
    assert "alarm raised: ssep.amplitude:L median:N20 high" in mne_texts

    with pyedflib.EdfReader(str(path)) as f:
        assert f.getSignalLabels()[:3] == NAMES
        assert f.getPhysicalDimension(0) == "uV"
        for i in range(3):
            np.testing.assert_allclose(f.readSignal(i)[:n], uv[i], atol=lsb_uv)
        onsets, durations, texts = f.readAnnotations()
    stim0 = np.flatnonzero(trig & 1) / FS
    np.testing.assert_allclose(onsets[texts == "stim bit 0"], stim0, atol=1e-6)
    assert np.count_nonzero(texts == "stim bit 2") == np.count_nonzero(trig & 4)
    assert durations[list(texts).index("alarm raised: ssep.amplitude:L median:N20 high")] == 0.25

    rec = read_recording(path)
    assert rec.channel_names == tuple(NAMES) and rec.has_trigger_channel and rec.notes == []
    np.testing.assert_allclose(rec.data_uv[:, :n], uv, atol=lsb_uv)
    np.testing.assert_array_equal(rec.trigger[:n], trig)
    np.testing.assert_allclose(rec.data_uv, mne_uv, atol=1e-9)  # same decode as MNE
    assert w.records_written == 4 and w.clipped_samples == 0
    texts_ours = [a.text for a in rec.annotations]
    assert texts_ours.count("stim bit 0") == np.count_nonzero(trig & 1)
    assert "recording end" in texts_ours


def test_bdf_clips_and_flags_out_of_range(tmp_path: Path) -> None:
    uv = np.zeros((3, FS))
    uv[0, 10] = 1e6  # 1 V: beyond ±262 mV
    w = BdfWriter(tmp_path / "clip.bdf", NAMES, FS)
    w.write_samples(uv)
    w.close()
    rec = read_recording(tmp_path / "clip.bdf")
    assert w.clipped_samples == 1
    assert rec.saturated[0, 10] and rec.saturated.sum() == 1
    assert rec.data_uv[0, 10] == pytest.approx(262144.0, abs=0.05)


def test_bdf_gap_in_stream_is_marked_never_written_as_data(tmp_path: Path) -> None:
    w = BdfWriter(tmp_path / "gap.bdf", NAMES, FS)
    w.write_samples(np.full((3, 500), 7.0), first_sample=1000)
    w.write_samples(np.full((3, 600), -3.0), first_sample=1700)  # 200 samples lost
    w.close()
    rec = read_recording(tmp_path / "gap.bdf")
    gap = [a for a in rec.annotations if a.text.startswith("BAD_ACQ_SKIP gap")]
    assert len(gap) == 1 and gap[0].onset_s == pytest.approx(0.5) and "200" in gap[0].text
    np.testing.assert_allclose(rec.data_uv[0, 300:500], 7.0, atol=0.05)
    # the gap keeps the time axis but holds no value: the digital minimum (read as saturated,
    # so no average takes it); the same for the padding after the last sample
    assert rec.saturated[:, 500:700].all() and not rec.saturated[:, :500].any()
    assert not rec.saturated[:, 700:1300].any() and rec.saturated[:, 1300:].all()
    np.testing.assert_allclose(rec.data_uv[0, 700:1300], -3.0, atol=0.05)
    with pyedflib.EdfReader(str(tmp_path / "gap.bdf")) as f:  # an independent reader
        digital = f.readSignal(0, digital=True)
    assert (digital[500:700] == -(2**23)).all() and (digital[:500] > -(2**23)).all()


def test_bdf_gap_is_a_gap_to_mne(tmp_path: Path) -> None:
    """MNE reads the digital minimum as an ordinary value: the gap and the last record's padding
    must reach it as 'BAD' annotations, so its epochs drop the sweeps over them, keep the others."""
    w = BdfWriter(tmp_path / "gap.bdf", NAMES, FS, fsync=False)
    trig = np.zeros(1000, np.uint16)
    trig[50::250] = 1  # a stimulus every 0.25 s
    w.write_samples(np.full((3, 1000), 7.0), trig, first_sample=0)
    w.write_samples(np.full((3, 1000), 7.0), trig, first_sample=1200)  # 200 samples lost
    w.close()
    raw = mne.io.read_raw_bdf(tmp_path / "gap.bdf", preload=True, verbose="error")
    bad = [a for a in raw.annotations if a["description"].startswith("BAD_ACQ_SKIP gap: 200")]
    assert len(bad) == 1 and bad[0]["onset"] == pytest.approx(1.0)
    assert bad[0]["duration"] == pytest.approx(0.2)
    events = mne.find_events(raw, stim_channel="Status", verbose="error")
    assert len(events) == 8
    epochs = mne.Epochs(raw, events, tmin=0.0, tmax=0.3, baseline=None, preload=True,
                        verbose="error")
    assert len(epochs) == 6  # the sweeps into the gap (0.8 s) and the padding (2.0 s) dropped
    np.testing.assert_allclose(epochs.get_data(picks="eeg"), 7e-6, atol=0.05e-6)
    kept = raw.get_data(picks=[0], reject_by_annotation="omit")
    assert kept.shape[1] == 2000  # 3 s in the file: the gap and the last record's padding omitted


def test_bdf_non_integer_rate_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="sample_rate_hz"):
        BdfWriter(tmp_path / "x.bdf", NAMES, 250.5)


@pytest.fixture()
def good_file(tmp_path: Path) -> Path:
    uv, trig = _signal(2 * FS)
    path = tmp_path / "good.bdf"
    _write(path, uv, trig)
    return path


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_bdf_truncated_file_is_named(good_file: Path) -> None:
    size = os.path.getsize(good_file)
    with open(good_file, "r+b") as f:
        f.truncate(size - 1000)
    # 2 s of data + 1 record carrying the alarm annotated after the last sample
    with pytest.raises(RecordingError, match=r"good\.bdf: truncated: the header says 3 data"):
        read_recording(good_file)
    rec = read_recording(good_file, strict=False)  # salvage what is whole
    assert rec.n_samples == 2 * FS and "truncated" in rec.notes[0]


def test_bdf_record_count_minus_one_and_tail_bytes(good_file: Path, tmp_path: Path) -> None:
    _patch(good_file, 236, b"-1      ")
    with open(good_file, "ab") as f:
        f.write(b"\x01" * 100)  # an interrupted record
    rec = read_recording(good_file)
    assert rec.n_samples == 3 * FS
    assert any("-1" in n for n in rec.notes) and any("100 bytes" in n for n in rec.notes)


@pytest.mark.parametrize(
    ("offset", "data", "message"),
    [
        (0, b"PK\x03\x04", "not an EDF or BDF file"),
        (236, b"two     ", "number of data records"),
        (184, b"512     ", "header size"),
        (244, b"nan     ", "duration of a data record"),
        (244, b"0       ", "duration of a data record"),
        (256 + 16 * 5 + 80 * 5 + 8 * 5 + 8 * 5 * 2, b"abc     ", "corrupt header of signal 0"),
        (256 + 16 * 5 + 80 * 5 + 8 * 5, b"nan     ", "corrupt header of signal 0"),
        (256 + 16 * 5 + 80 * 5 + 8 * 5 + 8 * 5, b"1e999   ", "corrupt header of signal 0"),
    ],
)
def test_bdf_corrupt_header_is_named(
    good_file: Path, offset: int, data: bytes, message: str
) -> None:
    _patch(good_file, offset, data)
    with pytest.raises(RecordingError, match=message) as err:
        read_recording(good_file)
    assert str(good_file) in str(err.value)


def test_bdf_reads_edf_plus_written_by_pyedflib(tmp_path: Path) -> None:
    """Our reader on a file we did not write: EDF+ (16 bit, mV) from pyedflib, with annotations."""
    path = tmp_path / "other.edf"
    n = 2 * 256
    x = np.sin(np.arange(n) / 10.0)  # mV
    with pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        w.setSignalHeaders([{"label": "EEG Fz", "dimension": "mV", "sample_frequency": 256,
                             "physical_max": 2.0, "physical_min": -2.0,
                             "digital_max": 32767, "digital_min": -32768}])
        w.writeSamples([x])
        w.writeAnnotation(0.5, -1, "T1")
    rec = read_recording(path)
    assert rec.channel_names == ("EEG Fz",) and rec.sample_rate_hz == 256
    np.testing.assert_allclose(rec.data_uv[0], x * 1000.0, atol=4.0 / 65535 * 1000)
    assert [(a.onset_s, a.text) for a in rec.annotations] == [(0.5, "T1")]
    assert not rec.has_trigger_channel and not rec.trigger.any()


def test_bdf_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot read it"):
        read_recording(tmp_path / "missing.bdf")
    shutil.copy(__file__, tmp_path / "text.bdf")
    with pytest.raises(RecordingError, match="not an EDF or BDF"):
        read_recording(tmp_path / "text.bdf")
