"""A stand-in for the appliance's publishing side, run as its own process by the kill tests:
an MqttLink on the given outbox publishing trends (two sites) and alarm events at --rate Hz until
it is killed (SIGKILL: nothing is flushed) or terminated (SIGTERM: clean stop, death sent)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.config import from_dict  # noqa: E402
from appliance.outputs.mqtt import MqttLink  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--outbox", required=True)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--keepalive", type=int, default=5)
    ap.add_argument("--start", type=int, default=0, help="first t_s")
    args = ap.parse_args()
    cfg = from_dict({
        "device": {"id": "or1"},
        "mqtt": {"host": args.host, "port": args.port, "keepalive_s": args.keepalive,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "analysis": {"sites": [
            {"name": "L median", "modality": "ssep_upper", "channels": ["C3'-Fz"]},
            {"name": "R tibial", "modality": "ssep_lower", "channels": ["Cz'-Fz"]},
        ]},
    })
    link = MqttLink(cfg, args.outbox, lambda n, a, c: {"ok": True})
    link.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("ready", flush=True)
    i = args.start
    period = 1.0 / args.rate
    while not done.is_set():
        for site, modality in (("L median", "ssep_upper"), ("R tibial", "ssep_lower")):
            link.publish_trend({"type": "trend", "t_s": float(i), "site": site,
                                "modality": modality, "channel": "C3'-Fz", "n_sweeps": i,
                                "components": {}})
        if i % 5 == 0:
            link.publish_alarm_event({
                "type": "alarm_event", "event": "raised", "alarm_id": f"test.{i}",
                "priority": "medium", "kind": "technical", "site": "", "message": "test",
                "evidence": {}, "latched": False, "t_s": float(i),
                "t_utc": "2026-01-01T00:00:00Z", "cause": "health",
            })
        i += 1
        done.wait(period)
    link.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
