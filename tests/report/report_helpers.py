"""A real case for the report tests (a unique module name, not conftest.py): the appliance on
the simulated patient, faster than real time, with an SSEP alarm, annotated events, an
acknowledgement, a restart that resumes the case (a second raw segment) and a stop."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from system_tools import need_tool
from two_site_case import config_dict as two_site_config

ALARM_ID = "ssep.amplitude:L median:C4'-Fz"


def config_dict(tmp: Path, realtime: bool = False) -> dict[str, Any]:
    """The two-site case, its 60 % drop at 12 s raised as an alarm at ~20 s."""
    return {
        **two_site_config(tmp, {"id": "report-dev", "name": "OR 3 cart", "location": "OR 3"},
                          "report-ssep-drop", 12.0, realtime),
        "lights": {"backend": "recording", "lamp_test_s": 0.0},
        "mqtt": {"enabled": False},
        "recording": {"directory": str(tmp / "cases"), "min_free_mb": 20.0, "stop_free_mb": 5.0,
                      "fsync": False},
    }


def wait_for(pred: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


def start(tmp: Path, realtime: bool = False) -> tuple[Any, threading.Thread]:
    """The real Appliance (lamps on a RecordingBackend) running on a thread."""
    from appliance import config
    from appliance.outputs.gpio import RecordingBackend
    from appliance.service import Appliance

    app = Appliance(config.from_dict(config_dict(tmp, realtime)), tmp / "state",
                    lights_backend=RecordingBackend())
    runner = threading.Thread(target=app.run, daemon=True)
    runner.start()
    return app, runner


def stop(app: Any, runner: threading.Thread) -> None:
    app.request_stop()
    runner.join(30)
    assert not runner.is_alive(), "the appliance did not stop"


def make_case(tmp: Path) -> Path:
    """Run 1: baselines, "screw L4 left", the alarm, acknowledged, "rod placed"; stopped like a
    crash would (the case stays open). Run 2 resumes it: a second segment, "closure", then
    stop_case. ~10 s of wall time."""
    app, runner = start(tmp)
    try:
        assert wait_for(lambda: app.stream_t_s > 10.0, 60), "no stream"
        app.command("annotate", {"text": "screw L4 left"}, "")
        assert wait_for(lambda: ALARM_ID in app.timeline.raised_s, 90), "no alarm"
        app.command("acknowledge", {}, "")
        assert wait_for(lambda: app.stream_t_s > 24.0, 60)
        app.command("annotate", {"text": "rod placed"}, "")
        assert wait_for(lambda: app.stream_t_s > 28.0, 60)
    finally:
        stop(app, runner)
    app, runner = start(tmp)  # resumes the open case
    try:
        assert wait_for(lambda: app.stream_t_s > 6.0, 60)
        app.command("annotate", {"text": "closure"}, "")
        assert wait_for(lambda: app.stream_t_s > 9.0, 60)
        app.command("stop_case", {}, "")
    finally:
        stop(app, runner)
    (case,) = (tmp / "cases").iterdir()
    return case


EMG_CHANNELS = ["Orb-oc L", "Orb-or L", "C3-P3", "C4-P4"]
A_TRAIN_ID = "emg.a_train:Orb-oc L"


def make_continuous_case(tmp: Path) -> Path:
    """EEG (C3-P3 left, C4-P4 right) and free-running EMG on two facial channels, an A-train at
    4 s on "Orb-oc L"; 11 s of stream faster than real time, no evoked-potential site."""
    from appliance import config
    from appliance.outputs.gpio import RecordingBackend
    from appliance.service import Appliance

    scenario = tmp / "emg.toml"
    scenario.write_text('name = "a-train"\nduration_s = 12.0\n[[event]]\ntype = "a_train"\n'
                        'at_s = 4.0\nchannel = "Orb-oc L"\nduration_s = 0.6\n'
                        'amplitude_uv = 150.0\n')
    d = {"device": {"id": "or-emg"},
         "frontend": {"kind": "simulated", "sample_rate_hz": 4000, "channels": EMG_CHANNELS,
                      "scenario": str(scenario), "realtime": False, "seed": 3},
         "analysis": {"emg_free": {"channels": EMG_CHANNELS[:2]},
                      "eeg": {"left": ["C3-P3"], "right": ["C4-P4"]}},
         "alarms": {"control_socket": str(tmp / "alarm.sock")},
         "lights": {"backend": "recording", "lamp_test_s": 0.0},
         "mqtt": {"enabled": False},
         "recording": {"directory": str(tmp / "cases"), "min_free_mb": 20.0,
                       "stop_free_mb": 5.0, "fsync": False}}
    app = Appliance(config.from_dict(d), tmp / "state", lights_backend=RecordingBackend())
    runner = threading.Thread(target=app.run, daemon=True)
    runner.start()
    try:
        assert wait_for(lambda: app.stream_t_s > 11.0, 60), "no stream"
    finally:
        stop(app, runner)
    (case,) = (tmp / "cases").iterdir()
    return case


# ------------------------------------------------------------- reading the rendered pages

DPI = 40  # A4 at 40 dpi: 331 x 468 px, enough to count a plot's pixels


# colour classes, not exact colours: at 40 dpi a thin line is blended into the white around it
def reddish(img: np.ndarray) -> np.ndarray:  # the average at the alarm, an alarm's line
    a = img.astype(int)
    return (a[..., 0] > 150) & (a[..., 1] < 130) & (a[..., 2] < 130)


def bluish(img: np.ndarray) -> np.ndarray:  # the baseline; the first channel's trend
    a = img.astype(int)
    return (a[..., 2] > 150) & (a[..., 0] < 150) & (a[..., 2] - a[..., 0] > 60)


def dark(img: np.ndarray) -> np.ndarray:  # the averages (and text)
    return img.max(axis=-1) < 100


def pdf_pages(pdf: Path, out: Path) -> tuple[list[np.ndarray], list[str]]:
    """Each page as an RGB array (pdftoppm) and its text (pdftotext)."""
    pdftoppm = need_tool("pdftoppm", "poppler-utils")
    pdftotext = need_tool("pdftotext", "poppler-utils")
    subprocess.run([pdftoppm, "-r", str(DPI), "-png", str(pdf), str(out / "pg")], check=True)
    pngs = sorted(out.glob("pg-*.png"))
    text = subprocess.run([pdftotext, "-layout", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout.split("\f")
    return [np.asarray(Image.open(p).convert("RGB")) for p in pngs], text[:len(pngs)]


def cells(img: np.ndarray, rows: int, cols: int, top: float = 0.05, bottom: float = 0.03
          ) -> list[np.ndarray]:
    """The page's plot areas as a rows x cols grid (below the title, above the footnote)."""
    h, w = img.shape[:2]
    y0, y1 = int(top * h), int((1 - bottom) * h)
    ys = np.linspace(y0, y1, rows + 1).astype(int)
    xs = np.linspace(0, w, cols + 1).astype(int)
    return [img[ys[r]:ys[r + 1], xs[c]:xs[c + 1]] for r in range(rows) for c in range(cols)]
