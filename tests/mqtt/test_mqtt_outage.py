"""The broker is stopped for 30 s and restarted while trends, alarm events and waveforms stream
at a few Hz: every trend and alarm event arrives, in order per topic, none lost (by seq);
waveforms older than their expiry are skipped and counted, not delivered late."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from mqtt_support import BASE, Collector, alarm_event, make_cfg, persistent_broker

from appliance.outputs.mqtt import MqttLink

OUTAGE_S = 30.0  # the number
RATE_HZ = 5.0
SITES = (("L median", "ssep_upper"), ("R tibial", "ssep_lower"))


def _stream(link: MqttLink, stop: threading.Event, published: dict[str, int]) -> None:
    i = 0
    while not stop.is_set():
        for site, modality in SITES:
            link.publish_trend({"type": "trend", "t_s": i / RATE_HZ, "site": site,
                                "modality": modality, "channel": "C3'-Fz", "n_sweeps": i,
                                "components": {}})
            link.publish_waveform({"type": "waveform", "t_s": i / RATE_HZ, "site": site,
                                   "modality": modality, "channel": "C3'-Fz", "n_sweeps": i,
                                   "sample_rate_hz": 4000.0, "t0_ms": -5.0,
                                   "encoding": "int16-le-base64", "scale_uv": 0.01,
                                   "data": "AAABAA=="})
        if i % 5 == 0:
            link.publish_alarm_event(alarm_event(i, i / RATE_HZ))
            published["alarm"] += 1
        published["trend"] += 1
        i += 1
        stop.wait(1.0 / RATE_HZ)


def test_mqtt_broker_outage_30s_loses_nothing(tmp_path: Path, mosq_dir: Path) -> None:
    broker = persistent_broker(mosq_dir)
    broker.start()
    sub = Collector(broker.host, broker.port, f"{BASE}/#", persistent=True,
                    client_id="outage-sub")
    cfg = make_cfg(broker.host, broker.port, waveform_expiry_s=10, replay_rate_per_s=100.0)
    link = MqttLink(cfg, tmp_path / "outbox.db")
    link.start()
    stop = threading.Event()
    published = {"trend": 0, "alarm": 0}
    t = threading.Thread(target=_stream, args=(link, stop, published), daemon=True)
    healthy_in_outage: list[bool] = []
    try:
        assert sub.wait_for(lambda ms: any(m.topic == f"{BASE}/status" for m in ms), 5)
        t.start()
        time.sleep(3.0)
        broker.stop()
        t_end = time.monotonic() + OUTAGE_S
        while time.monotonic() < t_end:
            healthy_in_outage.append(link.healthy())
            time.sleep(1.0)
        rows_in_outage = link.stats()["outbox_rows"]
        broker.start()
        time.sleep(3.0)
        stop.set()
        t.join(5)
        n_trend, n_alarm = published["trend"], published["alarm"]

        def complete(ms: list) -> bool:
            by = sub.by_topic()
            return (len(by[f"{BASE}/trend/ssep_upper/L_median"]) >= n_trend
                    and len(by[f"{BASE}/trend/ssep_lower/R_tibial"]) >= n_trend
                    and len(by[f"{BASE}/alarm/event"]) >= n_alarm
                    and link.stats()["outbox_rows"] == 0)

        assert sub.wait_for(complete, 30), {k: len(v) for k, v in sub.by_topic().items()}
        stats = link.stats()
    finally:
        stop.set()
        link.stop()
        sub.close()
        broker.stop()

    assert all(healthy_in_outage), "the outbox accepted rows, so the watchdog must be fed"
    assert rows_in_outage >= OUTAGE_S * RATE_HZ * 2  # trends alone, all waiting on disk
    by = sub.by_topic()
    for topic, n in ((f"{BASE}/trend/ssep_upper/L_median", n_trend),
                     (f"{BASE}/trend/ssep_lower/R_tibial", n_trend),
                     (f"{BASE}/alarm/event", n_alarm)):
        seqs = [b["seq"] for b in by[topic]]
        assert seqs == list(range(1, n + 1)), f"{topic}: lost or out of order"
    # waveforms: in order; those that outlived waveform_expiry_s were dropped and counted
    wf = {s: [b["seq"] for b in by[f"{BASE}/waveform/{m}/{s.replace(' ', '_')}"]]
          for s, m in SITES}
    assert all(seqs == sorted(seqs) for seqs in wf.values())
    assert stats["expired"] >= 2 * (OUTAGE_S - 10 - 2) * RATE_HZ
    # every waveform was either delivered or expired (counted): none vanished silently
    assert sum(len(v) for v in wf.values()) + stats["expired"] == 2 * n_trend


def test_mqtt_network_cut_detected_by_keepalive_loses_nothing(tmp_path: Path,
                                                               mosq_dir: Path) -> None:
    """SIGSTOP on the broker: the TCP connection stays open but nothing answers, as when a
    cable is cut. The link must notice by its own keepalive, reconnect and replay."""
    broker = persistent_broker(mosq_dir)
    broker.start()
    sub = Collector(broker.host, broker.port, f"{BASE}/trend/#", persistent=True,
                    client_id="cut-sub")
    link = MqttLink(make_cfg(broker.host, broker.port, keepalive_s=2), tmp_path / "o.db")
    link.start()
    stop = threading.Event()
    published = {"trend": 0, "alarm": 0}
    t = threading.Thread(target=_stream, args=(link, stop, published), daemon=True)
    try:
        t.start()
        time.sleep(1.0)
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGSTOP)
        time.sleep(6.0)  # paho: PINGREQ after keepalive_s of silence, gives up after another
        cut_stats = link.stats()
        broker.proc.send_signal(signal.SIGCONT)
        time.sleep(1.0)
        stop.set()
        t.join(5)
        n = published["trend"]
        assert sub.wait_for(lambda ms: all(
            len(sub.by_topic()[f"{BASE}/trend/{m}/{s.replace(' ', '_')}"]) >= n
            for s, m in SITES), 20)
    finally:
        stop.set()
        link.stop()
        sub.close()
        broker.stop()
    assert not cut_stats["connected"], "keepalive should have declared the connection dead"
    assert link.counts["connects"] >= 2
    for s, m in SITES:
        seqs = [b["seq"] for b in sub.by_topic()[f"{BASE}/trend/{m}/{s.replace(' ', '_')}"]]
        assert seqs == list(range(1, n + 1))
