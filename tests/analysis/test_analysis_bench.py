"""`ionm bench pipeline` runs and reports its figures (a smoke test: speed goals are measured
by the bench itself, never asserted here)."""

from __future__ import annotations

import json
import math
import subprocess
import sys


def test_analysis_bench_pipeline_quick_reports_every_figure():
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "bench", "pipeline", "--quick",
                        "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in ("pipeline_realtime_factor", "mne_ratio", "mne_ratio_same_iir", "peak_rss_mb",
                "pipeline_rss_mb", "rss_growth_mb"):
        assert isinstance(d[key], float) and math.isfinite(d[key]), (key, d[key])
    assert d["pipeline_realtime_factor"] > 0 and d["mne_ratio"] > 0 and d["peak_rss_mb"] > 0
    assert d["pipeline_seconds_of_data"] == 10.0
