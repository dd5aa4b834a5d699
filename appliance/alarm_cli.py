"""`ionm alarm ack|pause|status`: acknowledge, audio-pause or list the alarms of the appliance
running on this machine, over its local control socket (appliance.alarms.control)."""

from __future__ import annotations

import argparse
import json
import sys

from appliance.alarms.control import CLI_ACTIONS, default_socket_path, request
from appliance.errors import IonmError

HELP = {
    "ack": "acknowledge: clear latched alarms whose condition ended, silence the rest",
    "pause": "pause audio for alarms.audio_pause_s (lights continue)",
    "status": "list the alarms whose signal is on",
}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm alarm", description=__doc__)
    ap.add_argument("action", choices=CLI_ACTIONS,
                    help="; ".join(f"{k}: {v}" for k, v in HELP.items()))
    ap.add_argument("--socket", help="control socket (default: from --config or the runtime dir)")
    ap.add_argument("--config", help="the appliance's config file (for alarms.control_socket)")
    ap.add_argument("--json", action="store_true", help="print the appliance's reply as JSON")
    args = ap.parse_args(argv)
    try:
        if args.socket:
            path = args.socket
        else:
            settings = None
            if args.config:
                from appliance.config import load

                settings = load(args.config).alarms
            path = str(default_socket_path(settings))
        reply = request(path, args.action)
    except IonmError as e:
        print(f"ionm alarm {args.action}: {e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(reply, sys.stdout, sort_keys=True)
        print()
        return 0
    for ev in reply["events"]:
        print(f"{ev['event']}: {ev['alarm_id']}" if ev["alarm_id"] else ev["message"])
    if args.action == "ack" and not reply["events"]:
        print("nothing to acknowledge")
    disp = reply["display"]
    if disp["audio_paused"]:
        print(f"audio paused, {disp['audio_paused_s_left']:.0f} s left")
    for a in reply["active"]:
        state = "present" if a["active"] else "ended, latched: acknowledge to clear"
        ack = ", acknowledged" if a["acknowledged"] else ""
        print(f"  {a['priority']:<6} {a['kind']:<13} {a['alarm_id']}  ({state}{ack})"
              f" {a['message']}")
    if not reply["active"]:
        print("  no alarms")
    return 0
