"""The retained baseline message shows the average its baseline was measured on: the channel's
last moving average, or, for a baseline taken from the site's longer template average, that
longer average (before: the last 300-sweep average, which the baseline's amplitude, sweep count
and `why` did not describe). A real broker and the real link."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
from mqtt_support import BASE, SITES, Collector, load_schemas, make_cfg, schema_for

from appliance.analysis.baseline import Baseline
from appliance.analysis.monitor import BaselineEvent
from appliance.analysis.outputs import Waveform
from appliance.outputs.mqtt import MqttLink
from appliance.service.fanout import BaselineBoard

SITE = SITES[0]["name"]
CH = SITES[0]["channels"][0]
FS_HZ, T0_MS = 4000.0, -5.0


def _uv(w: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(w["data"]), "<i2") * w["scale_uv"]


def _baseline(t_s: float, n: int, source: str, trace: np.ndarray) -> Baseline:
    b = Baseline(SITE, CH, t_s, "auto", n, 2.1, 19.4, True, 4.4, 0.7, {}, source=source,
                 why="the 300-sweep average was not reproducible" if source != "moving_average"
                 else "")
    return b.with_template(trace, 0.05, n)


def test_retained_baseline_carries_the_average_it_was_measured_on(tmp_path: Path, broker):
    t = np.arange(200) / FS_HZ * 1e3 + T0_MS
    moving = np.sin(t / 3.0)  # the channel's last 300-sweep average
    longer = 2.0 * np.exp(-(((t - 19.4) / 1.5) ** 2))  # the site's 704-sweep template average
    board = BaselineBoard({SITE: SITES[0]["modality"]})
    sub = Collector(broker.host, broker.port, f"{BASE}/baseline/#")
    link = MqttLink(make_cfg(broker.host, broker.port), tmp_path / "outbox.db")
    link.start()
    try:
        board.saw(Waveform(150.0, SITE, SITES[0]["modality"], CH, 300, FS_HZ, T0_MS,
                           moving).to_json())
        b = _baseline(150.0, 704, "longer_average", longer)
        wave = Waveform(150.0, SITE, SITES[0]["modality"], CH, 704, FS_HZ, T0_MS,
                        np.asarray(b.template_uv))
        board.taken(BaselineEvent(b, wave).to_json(), link)
        assert sub.wait_for(lambda ms: len(ms) >= 1, 5.0)
        m = sub.msgs[0].body
        assert m["source"] == "longer_average" and m["n_sweeps"] == 704
        assert m["waveform"]["n_sweeps"] == 704
        np.testing.assert_allclose(_uv(m["waveform"]), longer, atol=1e-3)
        # a baseline from the moving average: the waveform line before it is that average
        board.taken(BaselineEvent(_baseline(160.0, 300, "moving_average", moving))
                    .to_json(), link)
        assert sub.wait_for(lambda ms: len(ms) >= 2, 5.0)
        m2 = sub.msgs[1].body
        assert m2["waveform"]["n_sweeps"] == 300
        np.testing.assert_allclose(_uv(m2["waveform"]), moving, atol=1e-3)
        schemas = load_schemas()
        for msg in (m, m2):
            errs = list(schemas[schema_for(msg)].iter_errors(msg))
            assert not errs, errs
    finally:
        link.stop()
        sub.close()
