"""`ionm record --seconds N` writes N seconds of the stream's time axis, gaps included and marked
as no data (issue 11, goal 7)."""

from __future__ import annotations

from pathlib import Path

import pyedflib

from appliance.config import from_dict
from appliance.frontend.record import record


def test_record_seconds_counts_gaps_and_marks_them(tmp_path: Path) -> None:
    sc = tmp_path / "drop.toml"
    sc.write_text('name = "drop"\n[[event]]\ntype = "dropout"\nat_s = 0.7\nsamples = 300\n')
    cfg = from_dict({"frontend": {"kind": "ads1299-emulated", "sample_rate_hz": 1000,
                                  "realtime": False, "channels": ["C3'-Fz", "C4'-Fz"],
                                  "scenario": str(sc)}})
    out = tmp_path / "r.bdf"
    summary = record(cfg, 2.0, str(out), log=lambda *_: None)
    assert summary["seconds"] == 2.0 and summary["missed_samples"] == 300
    with pyedflib.EdfReader(str(out)) as f:
        assert f.getNSamples()[0] == 2000  # not 2.3 s: the 300 lost samples count toward N
        digital = f.readSignal(0, digital=True)
        onsets, durations, texts = f.readAnnotations()
    gap = [i for i, t in enumerate(texts) if t.startswith("BAD_ACQ_SKIP gap: 300")]
    assert len(gap) == 1
    lo = int(round(onsets[gap[0]] * 1000))
    assert durations[gap[0]] == 0.3
    assert (digital[lo:lo + 300] == -(2**23)).all()  # no data, never a held value
    assert (digital[:lo] > -(2**23)).all() and (digital[lo + 300:] > -(2**23)).all()
