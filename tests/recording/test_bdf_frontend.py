"""RecordingFrontEnd plays EDF/BDF(+) files: events from a Status channel or from annotations,
channel selection, pacing, clear errors for bad files and settings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyedflib
import pytest
from recording_helpers import CHANNELS

from appliance.config import from_dict
from appliance.errors import FrontEndError, RecordingError
from appliance.frontend.bdf import BdfWriter
from appliance.frontend.factory import open_frontend
from appliance.frontend.recording import RecordingFrontEnd, annotation_bit

FS = 1000
N = 3 * FS + 500


def _source() -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(N)
    uv = np.stack([20 * np.sin(idx / (3.0 + c)) for c in range(3)])
    trig = np.zeros(N, np.uint16)
    trig[idx % 213 == 7] |= 1
    trig[idx % 331 == 11] |= 8
    return uv, trig


def _file(tmp_path: Path, status: bool) -> Path:
    uv, trig = _source()
    path = tmp_path / ("status.bdf" if status else "annot.bdf")
    w = BdfWriter(path, CHANNELS, FS, trigger_channel=status)
    w.write_samples(uv, trig)
    w.annotate(1.0, 0.0, "alarm raised: x (high)")
    w.close()
    return path


def _cfg(path: Path, **frontend: object):  # type: ignore[no-untyped-def]
    fe = {"kind": "recording", "recording_path": str(path), "channels": CHANNELS,
          "sample_rate_hz": FS, "realtime": False, "block_ms": 16.0, **frontend}
    return from_dict({"frontend": fe})


def _play(fe, fs: float = FS) -> tuple[np.ndarray, np.ndarray, list[int]]:  # type: ignore[no-untyped-def]
    fe.start()
    data, trig, firsts = [], [], []
    while (b := fe.read_block(timeout_s=1.0)) is not None:
        data.append(b.data_uv)
        trig.append(b.trigger)
        firsts.append(b.first_sample)
        assert b.n_samples <= 16 and b.sample_rate_hz == fs
    fe.close()
    return np.concatenate(data, axis=1), np.concatenate(trig), firsts


@pytest.mark.parametrize("status", [True, False], ids=["status-channel", "annotations"])
def test_bdf_frontend_plays_file_with_events(tmp_path: Path, status: bool) -> None:
    path = _file(tmp_path, status)
    fe = open_frontend(_cfg(path, trigger_mask=0x01))  # through C's factory
    assert isinstance(fe, RecordingFrontEnd)
    assert fe.trigger_source == ("channel+annotations" if status else "annotations")
    data, trig, firsts = _play(fe)
    uv, src_trig = _source()
    assert data.shape[1] == 4 * FS  # 3.5 s of samples, last record padded by the writer
    np.testing.assert_allclose(data[:, :N], uv, atol=0.04)
    assert np.all(np.diff(firsts) == 16)
    np.testing.assert_array_equal(np.flatnonzero(trig), np.flatnonzero(src_trig & 1))
    assert not (trig & 8).any()  # masked out
    assert fe.finished and fe.read_block() is None
    if not status:
        assert fe.unmapped_annotations == {"alarm raised: x (high)": 1, "recording end": 1}


def test_bdf_frontend_zero_status_channel_falls_back_to_annotations(tmp_path: Path) -> None:
    """A Status channel left at zero while the stimuli are annotated (e.g. a converted file)."""
    uv, src_trig = _source()
    path = tmp_path / "zero-status.bdf"
    w = BdfWriter(path, CHANNELS, FS, trigger_channel=True, annotate_triggers=False)
    w.write_samples(uv)  # trigger bits all zero
    for i in np.flatnonzero(src_trig & 1):
        w.annotate(i / FS, 0.0, "stim bit 0")
    w.close()
    fe = open_frontend(_cfg(path))
    _, trig, _ = _play(fe)
    np.testing.assert_array_equal(np.flatnonzero(trig), np.flatnonzero(src_trig & 1))


def test_bdf_frontend_events_from_foreign_edf_annotations(tmp_path: Path) -> None:
    path = tmp_path / "physionet-like.edf"
    with pyedflib.EdfWriter(str(path), 2, file_type=pyedflib.FILETYPE_EDFPLUS) as w:
        w.setSignalHeaders([{"label": lab, "dimension": "uV", "sample_frequency": 160,
                             "physical_max": 500.0, "physical_min": -500.0,
                             "digital_max": 32767, "digital_min": -32768}
                            for lab in ("Fc5.", "C3..")])
        w.writeSamples([np.zeros(160 * 6), np.ones(160 * 6)])  # EDFlib: 1 annotation per record
        for onset, text in [(0.5, "T0"), (1.25, "T2"), (2.0, "Stim L median"), (3.0, "T1"),
                            (3.5, "l median")]:
            w.writeAnnotation(onset, 0.5, text)
    cfg = from_dict({"frontend": {"kind": "recording", "recording_path": str(path),
                                  "channels": ["Fc5.", "C3.."], "realtime": False},
                     "analysis": {"sites": [{"name": "L median", "modality": "ssep_upper",
                                             "channels": ["C3.."], "trigger_bit": 5}]}})
    fe = RecordingFrontEnd.from_config(cfg, annotation_bits={"Stim L median": 4})
    assert fe.channel_names == ("Fc5.", "C3..")
    _, trig, _ = _play(fe, 160)
    hits = {int(i): int(trig[i]) for i in np.flatnonzero(trig)}
    assert hits == {80: 1, 200: 4, 320: 16, 480: 2, 560: 32}  # a site's name: its bit


def test_bdf_frontend_annotation_texts() -> None:
    assert [annotation_bit(t) for t in ("stim bit 3", "Stimulus 2", "trigger#5", "T0", "bit 15",
                                        "bit 16", "alarm raised: T1", "T1 start", "")] == [
        3, 2, 5, 0, 15, None, None, None, None]
    assert annotation_bit("R median", {"R median": 1}) == 1


def test_bdf_frontend_selects_and_orders_channels(tmp_path: Path) -> None:
    path = _file(tmp_path, True)
    fe = RecordingFrontEnd.from_config(_cfg(path, channels=[CHANNELS[2], CHANNELS[0]]))
    data, _, _ = _play(fe)
    uv, _ = _source()
    np.testing.assert_allclose(data[:, :N], uv[[2, 0]], atol=0.04)
    with pytest.raises(FrontEndError, match=r"\['Fz'\] not in recording .* which has"):
        RecordingFrontEnd.from_config(_cfg(path, channels=["Fz", CHANNELS[0]]))
    with pytest.raises(FrontEndError, match="frontend.recording_path: empty"):
        RecordingFrontEnd.from_config(_cfg(path, recording_path=""))


def test_bdf_frontend_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    path = _file(tmp_path, True)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 5000)
    with pytest.raises(RecordingError, match=r"status\.bdf: truncated: the header says 4"):
        open_frontend(_cfg(path))


def test_bdf_frontend_realtime_pacing(tmp_path: Path) -> None:
    """Paced at the sample rate: block k is delivered when its last sample is due."""
    path = _file(tmp_path, True)
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    fe = RecordingFrontEnd(str(path), 16, realtime=True, clock=lambda: now[0], sleep=sleep)
    fe.start()
    ends = []
    while (b := fe.read_block(timeout_s=1.0)) is not None:
        ends.append((b.end_sample, b.t_monotonic_s))
    assert len(ends) == 250 and ends[-1][0] == 4000
    for end_sample, t in ends:
        assert t == pytest.approx(100.0 + end_sample / FS)
    assert sum(slept) == pytest.approx(4.0)
    fe2 = RecordingFrontEnd(str(path), 16, realtime=True, clock=lambda: now[0], sleep=sleep)
    fe2.start()
    assert fe2.read_block(timeout_s=0.001) is None  # not due yet: a timeout, not the end
    assert not fe2.finished
