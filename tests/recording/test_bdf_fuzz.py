"""Property test: a damaged EDF/BDF file (bytes changed anywhere, cut anywhere) is either read or
refused with a RecordingError naming the file — never another exception, never a hang."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.errors import RecordingError
from appliance.frontend.bdf import BdfWriter, read_recording
from appliance.frontend.recording import RecordingFrontEnd

_DIR = Path(tempfile.mkdtemp(prefix="bdf-fuzz-"))
_GOOD = _DIR / "good.bdf"
_w = BdfWriter(_GOOD, ["A", "B"], 100, fsync=False)
_w.write_samples(np.random.default_rng(0).normal(0, 50, (2, 250)),
                 (np.arange(250) % 40 == 0).astype(np.uint16))
_w.annotate(0.5, 0.1, "alarm raised: x")
_w.close()
GOOD = _GOOD.read_bytes()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(st.tuples(st.one_of(st.integers(0, 1023),  # the header, most of the time
                                       st.integers(0, len(GOOD) - 1)),
                             st.one_of(st.sampled_from(b" -+.0123456789e\x00\xff"),
                                       st.integers(0, 255))), max_size=8),
    cut=st.one_of(st.none(), st.integers(0, len(GOOD))),
)
def test_bdf_damaged_file_is_read_or_refused_clearly(edits: list[tuple[int, int]],
                                                     cut: int | None) -> None:
    data = bytearray(GOOD)
    for pos, val in edits:
        data[pos] = val
    if cut is not None:
        data = data[:cut]
    path = _DIR / "damaged.bdf"
    path.write_bytes(bytes(data))
    try:
        rec = read_recording(path)
    except RecordingError as e:
        assert str(path) in str(e)
        return
    assert rec.data_uv.shape == (len(rec.channel_names), rec.n_samples)
    assert np.isfinite(rec.data_uv).all()
    fe = RecordingFrontEnd(str(path), 16, realtime=False)  # plays what read_recording accepts
    fe.start()
    n = 0
    while (b := fe.read_block()) is not None:
        n += b.n_samples
    assert n == rec.n_samples
