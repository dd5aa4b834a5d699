"""`ionm bench console` / `python -m appliance.bench.console --seconds 600`: the web console
under a hospital's load, in a real browser.

8 appliances x 4 sites (the production montage of deploy/config/ionm.toml: L/R median SSEP at
4.7 Hz with 3 channels, L/R tibial at 2.3 Hz with 2 channels; an update every 50 sweeps, a trend
and an averaged waveform per channel per update) publish through the appliance's own MqttLink
(outbox, envelope, topics) to one mosquitto, with health every 5 s, the case, and on every
device an alarm raised every 60 s and cleared 20 s later (event + retained active set).
`--speed K` multiplies every rate (K = 1: the real rates).

Debian's chromium (headless, Playwright) opens the console twice: the overview and one
device's view. Measured by the page itself (window.ionm.metrics): message-to-render lag, from
the message's t_utc (stamped by the link when it is published) to the end of the animation
frame that drew it, for every message that changes what that page shows; from the browser
(Chrome DevTools Protocol, after a forced garbage collection, every 10 s): JS heap used and DOM
nodes, so growth shows as a slope.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from appliance.bench.mqtt import _Mosquitto
from appliance.config import from_dict

SITES = [
    {"name": "L median", "modality": "ssep_upper", "channels": ["C4'-Fz", "Cv5-Fz", "Erb-L"],
     "rate_hz": 4.7, "comps": {"N20": (19.5, -1.6), "P25": (25.0, 1.4)}},
    {"name": "R median", "modality": "ssep_upper", "channels": ["C3'-Fz", "Cv5-Fz", "Erb-R"],
     "rate_hz": 4.7, "comps": {"N20": (19.4, -1.7), "P25": (25.1, 1.3)}},
    {"name": "L tibial", "modality": "ssep_lower", "channels": ["Cz'-Fz", "Pf-L"],
     "rate_hz": 2.3, "comps": {"P37": (37.5, 1.1), "N45": (45.0, -0.9)}},
    {"name": "R tibial", "modality": "ssep_lower", "channels": ["Cz'-Fz", "Pf-R"],
     "rate_hz": 2.3, "comps": {"P37": (37.8, 1.0), "N45": (45.2, -0.8)}},
]
UPDATE_SWEEPS = 50
N_DEVICES = 8
HEALTH_S = 5.0
ALARM_EVERY_S, ALARM_FOR_S = 60.0, 20.0
SAMPLE_S = 10.0
CHROMIUM = "/usr/bin/chromium"


class _Device:
    """One appliance's MQTT output, paced like the real analysis."""

    def __init__(self, i: int, port: int, work: Path, speed: float, rng: random.Random) -> None:
        from appliance.outputs.mqtt import MqttLink

        self.id = _device_id(i)
        cfg = from_dict({"device": {"id": self.id, "name": f"IONM OR {i + 1}",
                                    "location": f"OR {i + 1}"},
                         "mqtt": {"host": "127.0.0.1", "port": port, "keepalive_s": 10},
                         "analysis": {"sites": [{k: s[k] for k in ("name", "modality",
                                                                     "channels", "rate_hz")}
                                                for s in SITES]}})
        self.link = MqttLink(cfg, work / f"{self.id}.db")
        self.rng = rng
        self.speed = speed
        t0 = time.monotonic()
        # sites are not in step, nor are the devices
        self.next_update = [t0 + rng.uniform(0, UPDATE_SWEEPS / s["rate_hz"] / speed)
                            for s in SITES]
        self.next_health = t0 + rng.uniform(0, HEALTH_S / speed)
        self.alarm_at = t0 + rng.uniform(5, ALARM_EVERY_S) / speed
        self.alarm_on: float | None = None
        self.updates = [0] * len(SITES)
        self.sent = 0
        self.alarms = 0

    def start(self) -> None:
        self.link.start()
        self.link.publish_case({"type": "case", "state": "running", "case_id": f"{self.id}-c1",
                                "label": f"P-{self.id[2]}01", "procedure": "posterior fusion",
                                "started_utc": None, "stopped_utc": None})
        self.link.publish_active_alarms([])

    def tick(self, now: float, t_s: float) -> None:
        for k, s in enumerate(SITES):
            if now >= self.next_update[k]:
                self.next_update[k] += UPDATE_SWEEPS / s["rate_hz"] / self.speed
                self.updates[k] += 1
                for ch in s["channels"]:
                    trend, wave = _outputs(s, ch, t_s, self.updates[k], self.rng)
                    self.link.publish_trend(trend)
                    self.link.publish_waveform(wave)
                    self.sent += 2
        if now >= self.next_health:
            self.next_health += HEALTH_S / self.speed
            self.link.publish_health({"type": "health", "sample_rate_hz": 16000.0,
                                      "missed_samples": 0, "cpu_percent": 31.0})
            self.sent += 1
        if self.alarm_on is None and now >= self.alarm_at:
            self.alarm_on = now
            self.alarms += 1
            self._alarm("raised", True, t_s)
        elif self.alarm_on is not None and now >= self.alarm_on + ALARM_FOR_S / self.speed:
            self.alarm_on = None
            self.alarm_at = now + ALARM_EVERY_S / self.speed
            self._alarm("cleared", False, t_s)

    def _alarm(self, event: str, active: bool, t_s: float) -> None:
        aid = "ssep.amplitude:L median:C4'-Fz"
        msg = "L median C4'-Fz N20: amplitude 42% of baseline (alarm below 50%)"
        self.link.publish_alarm_event({
            "type": "alarm_event", "event": event, "alarm_id": aid, "priority": "high",
            "kind": "physiological", "site": "L median", "message": msg, "latched": False,
            "t_s": round(t_s, 3), "cause": "analysis",
            "evidence": {"channel": "C4'-Fz", "criteria": {"amplitude_ratio_min": 0.5},
                         "baseline": {"amplitude_uv": 3.0, "latency_ms": 19.5, "t_s": 1.0}}})
        self.link.publish_active_alarms([{
            "alarm_id": aid, "priority": "high", "kind": "physiological", "site": "L median",
            "message": msg, "active": True, "latched": False, "acknowledged": False,
        }] if active else [])
        self.sent += 2


def _outputs(s: dict[str, Any], ch: str, t_s: float, update: int,
             rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trend and a waveform in the analysis' own types (TrendPoint, Waveform)."""
    from appliance.analysis.outputs import ComponentValue, FitValue, TrendPoint, Waveform

    rate = 2000.0
    t_ms = -10.0 + np.arange(int(0.06 * rate if s["rate_hz"] > 3 else 0.11 * rate)) * 1000 / rate
    gain = 1.0 + 0.08 * math.sin(update / 7.0) + rng.gauss(0, 0.03)
    comps, trace = {}, rng.gauss(0, 0.15) * np.sin(2 * np.pi * 0.08 * t_ms)
    for name, (lat, amp) in s["comps"].items():
        comps[name] = ComponentValue(lat + rng.gauss(0, 0.2), amp * gain, 0.9, True)
        trace = trace + amp * gain * np.exp(-0.5 * ((t_ms - lat) / 2.0) ** 2)
    p2p = abs(list(comps.values())[0].amplitude_uv - list(comps.values())[1].amplitude_uv)
    fit = FitValue(gain, (gain - 0.15, gain + 0.15), p2p, list(s["comps"].values())[0][0], 0.1,
                   True, 300, 100, ({}, {}))
    tp = TrendPoint(t_s, s["name"], s["modality"], ch, "cortical", 300, comps,
                    next(iter(comps)), p2p, 0.25, 5.5, 12.0, 0.9,
                    {"phase": "zero", "band_hz": [30.0, 1000.0], "notch_hz": 60.0},
                    {"amplitude": 1}, fit if update > 3 else None)
    wf = Waveform(t_s, s["name"], s["modality"], ch, 300, rate, float(t_ms[0]), trace)
    return tp.to_json(), wf.to_json()


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(xs), q)), 1) if xs else None


def _slope_per_min(ts: list[float], ys: list[float]) -> float | None:
    """Least-squares slope per minute (growth of heap or nodes)."""
    if len(ts) < 3:
        return None
    return round(float(np.polyfit(np.asarray(ts) / 60.0, np.asarray(ys), 1)[0]), 3)


def measure(seconds: float, speed: float = 1.0, progress: bool = False,
            screenshots: Path | None = None) -> dict[str, Any]:
    from appliance.console.server import make_server, serve_in_thread

    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        raise RuntimeError("bench console needs playwright (pip install -e '.[test]')") from e
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"bench console needs Debian's chromium at {CHROMIUM}")
    broker = _Mosquitto(websockets=True)
    work = Path(tempfile.mkdtemp(prefix="ionm-bench-console-outbox-"))
    server = make_server("127.0.0.1", 0, f"ws://127.0.0.1:{broker.ws_port}/")
    serve_in_thread(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    # one process per appliance, as on the floor (each has its own Pi): no shared GIL
    procs = [subprocess.Popen([sys.executable, "-m", "appliance.bench.console", "--publisher",
                               str(i), "--port", str(broker.port), "--seconds", str(seconds + 300),
                               "--speed", str(speed), "--workdir", str(work)],
                              stdout=subprocess.PIPE, text=True) for i in range(N_DEVICES)]
    out: dict[str, Any] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            pages = {}
            for name, route in (("overview", "#/"), ("device", f"#/d/{_device_id(0)}")):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url + route)
                page.fill("#username", "bench")
                page.fill("#password", "bench")
                page.click("#connect")
                page.wait_for_selector("#login[hidden]", state="attached", timeout=10_000)
                pages[name] = (page, page.context.new_cdp_session(page))
            for _, cdp in pages.values():
                cdp.send("Performance.enable")
            lags: dict[str, list[float]] = {k: [] for k in pages}
            arrive: dict[str, list[float]] = {k: [] for k in pages}
            mem: dict[str, list[tuple[float, float, float]]] = {k: [] for k in pages}
            t0 = time.monotonic()
            next_sample = t0 + 2.0
            warmup = 0
            while (now := time.monotonic()) < t0 + seconds:
                if now >= next_sample:
                    next_sample += SAMPLE_S
                    for name, (page, cdp) in pages.items():
                        got = page.evaluate("""() => { const m = window.ionm.metrics;
                            let items = 0;  // what the page holds: bounded histories
                            for (const d of window.ionm.fleet.devices.values()) {
                              items += d.events.length;
                              for (const s of d.sites.values()) for (const c of s.channels.values())
                                items += c.trend.length + c.waves.length;
                            }
                            return [m.lags.splice(0), m.arriveLags.splice(0), items]; }""")
                        if not mem[name]:  # the first 2 s: links connecting, pages loading
                            warmup += len(got[0])
                            got = [[], [], got[2]]
                        lags[name] += got[0]
                        arrive[name] += got[1]
                        cdp.send("HeapProfiler.collectGarbage")
                        metrics = {m["name"]: m["value"] for m in
                                   cdp.send("Performance.getMetrics")["metrics"]}
                        mem[name].append((now - t0, metrics["JSHeapUsedSize"] / 1e6,
                                          metrics["Nodes"], got[2]))
                    if progress:
                        print(f"\rbench console: {now - t0:.0f}/{seconds:.0f} s",
                              end="", file=sys.stderr, flush=True)
                pages["overview"][0].wait_for_timeout(100)  # lets Playwright's loop run
            for name, (page, _) in pages.items():
                got = page.evaluate("[window.ionm.metrics.lags.splice(0), "
                                    "window.ionm.metrics.arriveLags.splice(0), "
                                    "window.ionm.metrics.messages]")
                lags[name] += got[0]
                arrive[name] += got[1]
                out[name] = {
                    "messages_received": got[2],
                    "rendered_messages": len(lags[name]),
                    "lag_ms": {"p50": _pct(lags[name], 50), "p95": _pct(lags[name], 95),
                               "max": _pct(lags[name], 100)},
                    "arrival_to_render_ms": {"p50": _pct(arrive[name], 50),
                                             "p95": _pct(arrive[name], 95),
                                             "max": _pct(arrive[name], 100)},
                    "heap_mb": {"first": round(mem[name][0][1], 2) if mem[name] else None,
                                "last": round(mem[name][-1][1], 2) if mem[name] else None,
                                "max": round(max(m[1] for m in mem[name]), 2) if mem[name]
                                else None,
                                "slope_per_min": _slope_per_min([m[0] for m in mem[name]],
                                                                [m[1] for m in mem[name]]),
                                "series": [round(m[1], 2) for m in mem[name]]},
                    "dom_nodes": {"first": mem[name][0][2] if mem[name] else None,
                                  "last": mem[name][-1][2] if mem[name] else None,
                                  "slope_per_min": _slope_per_min([m[0] for m in mem[name]],
                                                                  [m[2] for m in mem[name]]),
                                  "series": [int(m[2]) for m in mem[name]]},
                    "stored_items": [int(m[3]) for m in mem[name]],
                }
            if screenshots is not None:
                _screenshots(browser, pages, url, screenshots)
            browser.close()
        if progress:
            print(file=sys.stderr)
        for pr in procs:
            pr.terminate()  # the publisher prints its counts and stops its link
        counts = [json.loads(pr.communicate(timeout=20)[0] or "{}") for pr in procs]
        sent = sum(c.get("sent", 0) for c in counts)
        out["load"] = {"devices": N_DEVICES, "sites": N_DEVICES * len(SITES),
                       "seconds": seconds, "speed": speed, "published": sent,
                       "published_per_s": round(sent / (seconds + 2.0), 1),
                       "alarms_raised": sum(c.get("alarms", 0) for c in counts),
                       "warmup_lags_dropped": warmup}
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.kill()
                pr.wait(5)
        server.shutdown()
        server.server_close()
        broker.close()
        shutil.rmtree(work, ignore_errors=True)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """For `ionm bench console`: 20 s (quick) or 120 s at the real rates."""
    return {"console": measure(20.0 if quick else 120.0, progress=sys.stderr.isatty())}


def _screenshots(browser: Any, pages: dict[str, Any], url: str, out: Path) -> None:
    """docs/console-overview.png (desktop) and docs/console-phone.png (a phone's width)."""
    out.mkdir(parents=True, exist_ok=True)
    pages["overview"][0].screenshot(path=str(out / "console-overview.png"))
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    phone.goto(url)
    phone.fill("#username", "bench")
    phone.fill("#password", "bench")
    phone.click("#connect")
    phone.wait_for_timeout(4000)
    phone.screenshot(path=str(out / "console-phone.png"))
    phone.close()


def _device_id(i: int) -> str:
    return f"or{i + 1}-ionm"


def _publisher(i: int, port: int, seconds: float, speed: float, work: Path) -> int:
    """One appliance's output in its own process, until SIGTERM or `seconds`; prints counts."""
    import signal

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__("now", True))
    dev = _Device(i, port, work, speed, random.Random(7 + i))
    dev.start()
    t0 = time.monotonic()
    try:
        while not stop["now"] and (now := time.monotonic()) < t0 + seconds:
            dev.tick(now, (now - t0) * speed)
            time.sleep(0.02)
    finally:
        dev.link.stop()
    print(json.dumps({"sent": dev.sent, "alarms": dev.alarms}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.bench.console",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--screenshots", default=None,
                    help="save the overview (desktop and phone width) as PNGs in this folder")
    ap.add_argument("--publisher", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, default=600.0, help="how long (default 600)")
    ap.add_argument("--speed", type=float, default=1.0,
                    help="multiply every publishing rate (default 1: the real rates)")
    args = ap.parse_args(argv)
    if not (args.seconds > 0 and math.isfinite(args.seconds)):
        ap.error(f"--seconds: got {args.seconds}, allowed: a finite number > 0")
    if not (args.speed > 0 and math.isfinite(args.speed)):
        ap.error(f"--speed: got {args.speed}, allowed: a finite number > 0")
    if args.publisher is not None:
        return _publisher(args.publisher, args.port, args.seconds, args.speed,
                          Path(args.workdir))
    result = measure(args.seconds, args.speed, progress=sys.stderr.isatty(),
                     screenshots=Path(args.screenshots) if args.screenshots else None)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
