"""Bring-up check for the lamps, buzzer and button (hw/lights.md), without the rest of the
appliance: `ionm lights-check [--config C.toml] [--backend rpi] [--step-s 5]`.

Runs the lamp test, then shows each alarm situation for `--step-s` seconds with its name printed,
and reports button presses (short = acknowledge, long = audio pause) as they happen.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from appliance.alarms.events import Display
from appliance.cli import positive_seconds, run_command
from appliance.conditions import Priority

H, M, L = Priority.HIGH, Priority.MEDIUM, Priority.LOW
SITUATIONS = [
    ("high, physiological", Display(highest=H, highest_physiological=H, audio=H)),
    ("high, technical", Display(highest=H, highest_technical=H, audio=H)),
    ("medium, physiological", Display(highest=M, highest_physiological=M, audio=M)),
    ("medium, technical", Display(highest=M, highest_technical=M, audio=M)),
    ("low, physiological", Display(highest=L, highest_physiological=L)),
    ("low, technical", Display(highest=L, highest_technical=L)),
    ("high, audio paused", Display(highest=H, highest_physiological=H, audio_paused=True)),
    ("no alarm", Display()),
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ionm lights-check", description=__doc__)
    ap.add_argument("--config", help="config file (its [lights] section)")
    ap.add_argument("--backend", help="override lights.backend (rpi, terminal, file, none)")
    ap.add_argument("--step-s", type=positive_seconds, default=5.0,
                    help="seconds per situation")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)

    from appliance.config import from_dict, load
    from appliance.outputs.button import Button
    from appliance.outputs.gpio import backend_from_settings
    from appliance.outputs.lights import Lights

    # errors end as one line in appliance.cli.run_command (config errors exit 2)
    s = (load(args.config) if args.config else from_dict({})).lights
    if args.backend:
        s = dataclasses.replace(s, backend=args.backend)
    backend = backend_from_settings(s)
    out = sys.stderr  # the terminal backend owns stdout
    with backend, Lights.from_settings(s, backend) as lights:
        button = None
        if s.button_pin >= 0:
            button = Button.from_settings(s, backend, lambda: print("\nbutton: short", file=out),
                                          lambda: print("\nbutton: long", file=out))
        try:
            print("lamp test", file=out)
            lights.lamp_test(s.lamp_test_s)
            for name, display in SITUATIONS:
                print(f"\n{name}", file=out)
                lights.show(display)
                t_end = time.monotonic() + args.step_s
                while time.monotonic() < t_end:
                    lights.set_monitoring(True)
                    time.sleep(0.2)
            print("\nmonitoring stops: green goes dark within "
                  f"{s.monitoring_timeout_s:g} s", file=out)
            time.sleep(s.monitoring_timeout_s + 0.5)
        except KeyboardInterrupt:
            pass
        finally:
            if button is not None:
                button.close()
    return 0


if __name__ == "__main__":
    sys.exit(run_command("lights-check", main, sys.argv[1:]))
