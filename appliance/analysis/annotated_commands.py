"""Commands that change what the Monitor measures are annotated in the BDF+ recording at the
sample they took effect, so `ionm replay` re-applies them there: a replayed case gives the
outputs the live one gave (a baseline on command judges everything after it)."""

from __future__ import annotations

from typing import Any

from appliance.analysis.monitor import BaselineEvent

ALL_SITES = "*"  # set_baseline with no site: every site (and the EEG)
ANNOTATED = ("temg_search", "temg_intensity", "set_baseline")  # "<name>: <argument>"
ANNOTATION_PREFIXES = tuple(f"{name}: " for name in ANNOTATED)


def command_annotation(name: str, args: dict) -> str | None:
    """The BDF+ annotation text for a command the replay must repeat, else None."""
    if name == "temg_search":
        return f"temg_search: {args['target']}"
    if name == "temg_intensity":
        return f"temg_intensity: {float(args['ma']):g} {args.get('target') or ''}".rstrip()
    if name == "set_baseline":
        return f"set_baseline: {args.get('site') or ALL_SITES}"
    return None


def apply_annotation(monitor, text: str) -> list[Any] | None:
    """Repeat an annotated command on `monitor` (replay) at its sample: the outputs it
    makes (a baseline on command is announced as the live one was), or None when the text is
    not a command. Raises CommandError when the monitor refuses it."""
    name, sep, arg = text.partition(": ")
    if not sep or name not in ANNOTATED:
        return None
    if name == "temg_search":
        monitor.temg_search(arg)
        return []
    if name == "temg_intensity":
        ma, _, target = arg.partition(" ")
        monitor.temg_intensity(float(ma), target or None)
        return []
    return [BaselineEvent(b) for b in monitor.set_baseline(None if arg == ALL_SITES else arg)]
