"""What the report says in words: the header, the montage and settings, the alarm and event
timeline, the acknowledgements. Plain rows of strings; pdf.py and html.py lay them out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from appliance import NOT_A_MEDICAL_DEVICE, __version__
from appliance.report.casedata import CaseData, Event, parse_utc

ALARM_EVENTS = ("raised", "cleared", "acknowledged", "audio_paused", "escalated")


@dataclass(frozen=True)
class SitePlan:
    """A site as recorded: modality, channels with their roles and judged component, criteria."""

    name: str
    modality: str
    channels: tuple[str, ...]
    roles: tuple[str, ...]
    primary: tuple[str, ...]  # the component whose latency is judged, per channel
    trigger_bit: int
    rate_hz: float
    n_sweeps: int
    crit: dict[str, float]


def site_plans(case: CaseData) -> tuple[list[SitePlan], str]:
    """The sites of the case's own config snapshot, resolved like the running appliance did
    (appliance/analysis/plan.py). ("", []) -> a note when the snapshot cannot be planned."""
    from appliance import config
    from appliance.analysis.plan import plan_site
    from appliance.errors import ConfigError

    try:
        cfg = config.from_dict(case.info["config"])
        fs = float(cfg.frontend.sample_rate_hz)
        plans = []
        for s in cfg.analysis.sites:
            p = plan_site(s, cfg.analysis, tuple(cfg.frontend.channels), fs)
            primary = tuple(p.modality.measure_for(r).primary for r in p.roles)
            plans.append(SitePlan(s.name, s.modality, tuple(s.channels), p.roles, primary,
                                  s.trigger_bit, s.rate_hz, p.n_sweeps, dict(p.crit)))
        return plans, ""
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        return [], f"the case's config snapshot cannot be read by this version ({e})"


def duration(seconds: float) -> str:
    s = int(round(max(seconds, 0.0)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def header_rows(case: CaseData, made_utc: dt.datetime) -> list[tuple[str, str]]:
    info, cfg = case.info, case.info.get("config") or {}
    dev = cfg.get("device", {})
    segs = case.of("segment")
    resumed = len(case.run_starts_s) - 1
    if case.recording:
        last = case.events[-1] if case.events else None
        stop = (f"not stopped: still recording (or left open by a shutdown or crash); "
                f"reported up to {duration(case.end_s)} of case time (last event stored "
                f"{_utc(last.t_utc) if last else '—'})")
    else:
        stop = _utc(info.get("stopped_utc"))
    return [
        ("device", ", ".join(str(x) for x in (dev.get("id", "?"), dev.get("name"),
                                               dev.get("location")) if x)),
        ("case id", str(info.get("id", ""))),
        ("label", str(info.get("label") or "—")),
        ("procedure", str(info.get("procedure") or "—")),
        ("started", _utc(info.get("started_utc"))),
        ("stopped", stop),
        ("duration", duration(case.end_s)),
        ("raw segments", (f"{len(segs)} ({', '.join(str(s.data.get('file', '?')) for s in segs)})"
                          if segs else "none") + (f"; resumed {resumed}x after a restart"
                                                  if resumed else "")),
        ("recorded by", _software(case)),
        ("config hash", str(info.get("config_hash") or "—")),
        ("report", f"ionm {__version__} report made {made_utc:%Y-%m-%d %H:%M:%S} UTC"),
        ("note", NOT_A_MEDICAL_DEVICE),
    ]


def _software(case: CaseData) -> str:
    """The software of each run (stored in the case's started/resumed events since it was
    added; older cases do not say)."""
    runs = [str(e.data.get("software") or "not stored") for e in case.of("case")
            if e.data.get("event") in ("started", "resumed")]
    if not runs:
        return "not stored in this case"
    return runs[0] if len(set(runs)) == 1 else "; ".join(
        f"run {i + 1}: {r}" for i, r in enumerate(runs))


def _utc(text: str | None) -> str:
    t = parse_utc(text)
    return f"{t:%Y-%m-%d %H:%M:%S} UTC" if t else "—"


def _crit_text(crit: dict[str, float]) -> str:
    """e.g. 'amplitude < 50 % or latency > 110 % of baseline, on 2 updates'."""
    parts = []
    if crit.get("amplitude_ratio_min", 0) > 0:
        parts.append(f"amplitude < {crit['amplitude_ratio_min']:.0%}")
    if crit.get("latency_ratio_max", 0) > 0:
        parts.append(f"latency > {crit['latency_ratio_max']:.0%}")
    if crit.get("latency_shift_ms", 0) > 0:
        parts.append(f"latency +{crit['latency_shift_ms']:g} ms with amplitude < "
                     f"{crit.get('shift_amplitude_ratio_min', 0):.0%}")
    if not parts:
        return "—"
    text = " or ".join(parts) + " of baseline"
    if crit.get("confirm_updates"):
        text += f", on {crit['confirm_updates']:g} updates"
    if crit.get("peripheral_ratio_min", 0) > 0:
        text += (f"; peripheral < {crit['peripheral_ratio_min']:.0%}: stimulation "
                 "(technical)")
    return text


def montage_rows(case: CaseData, plans: list[SitePlan]) -> list[list[str]]:
    """One row per channel: site, modality, stimulus (on a site's first row), channel, role,
    judged component, then the site's criteria."""
    rows = [["site", "modality", "stimulus", "channel", "role", "judged", "criteria"]]
    if not plans:
        rows.append(["none", "", "", "", "", "", "no evoked-potential sites"])
    for p in plans:
        for i, (c, r, k) in enumerate(zip(p.channels, p.roles, p.primary, strict=True)):
            first = i == 0
            rows.append([p.name if first else "", p.modality if first else "",
                         f"bit {p.trigger_bit}, {p.rate_hz:g} Hz, n {p.n_sweeps}" if first else "",
                         c, r, k, _crit_text(p.crit) if first else ""])
    return rows


def settings_rows(case: CaseData) -> list[tuple[str, str]]:
    cfg = case.info.get("config") or {}
    fe, an, al = cfg.get("frontend", {}), cfg.get("analysis", {}), cfg.get("alarms", {})
    eeg, emg = an.get("eeg", {}), an.get("emg_free", {})
    temg = an.get("emg_triggered", {})
    rows = [
        ("front end", f"{fe.get('kind', '?')}, {fe.get('sample_rate_hz', '?')} Hz, gain "
         f"{fe.get('gain', '?')}"),
        ("channels", ", ".join(fe.get("channels", [])) or "—"),
        ("notch", f"{an.get('notch_hz', '?')} Hz"),
        ("baselines", f"{an.get('baseline_policy', '?')} after {an.get('baseline_updates', '?')}"
         f" steady updates (Fsp >= {an.get('fsp_min', '?')})"),
        ("case type", str(an.get("case_type", "?"))),
        ("alarms", f"audio pause {al.get('audio_pause_s', '?')} s"),
    ]
    if eeg.get("left") or eeg.get("right"):
        rows.append(("EEG", f"left {', '.join(eeg.get('left', []))}; right "
                     f"{', '.join(eeg.get('right', []))}"))
    if emg.get("channels"):
        rows.append(("free-running EMG", ", ".join(emg["channels"])))
    if temg.get("channels"):
        rows.append(("triggered EMG", f"{', '.join(temg['channels'])}; alarm below "
                     f"{temg.get('alarm_ma', '?')} mA"))
    return rows


def _who(cause: str) -> str:
    return {"button": "button on the cart", "cli": "local console", "analysis": "analysis",
            "health": "health check", "restore": "restored after restart"}.get(
        cause, cause.replace("mqtt:", "MQTT user ") if cause else "—")


def stored_at(case: CaseData, e: Event, t: float) -> str:
    """When the event was stored (UTC HH:MM:SS), else the case start + its case time."""
    w = parse_utc(e.t_utc)
    return f"{w:%H:%M:%S}" if w else case.clock(t)


def timeline_rows(case: CaseData) -> list[list[str]]:
    """Alarm events (raised / cleared / acknowledged / audio paused / escalated), annotated
    events and case events (started, resumed, stopped), in time order."""
    rows = [["time", "UTC", "what", "priority", "alarm / event", "cause", "message"]]
    items: list[tuple[float, int, list[str]]] = []
    for e in case.events:
        d = e.data
        if e.kind == "alarm_event":
            items.append((e.case_s, e.seq, [
                duration(e.case_s), stored_at(case, e, e.case_s), str(d.get("event", "?")),
                str(d.get("priority", "")), str(d.get("alarm_id", "")),
                _who(str(d.get("cause", ""))), str(d.get("message", ""))]))
        elif e.kind == "annotation":
            items.append((e.case_s, e.seq, [duration(e.case_s), stored_at(case, e, e.case_s),
                                            "event",
                                            "", str(d.get("text", "")), "annotated", ""]))
        elif e.kind == "case":
            t = _case_time(case, e)
            items.append((t, e.seq, [duration(t), stored_at(case, e, t),
                                     f"case {d.get('event', '?')}",
                                     "", str(d.get("label", "")), "", ""]))
    items.sort(key=lambda it: (it[0], it[1]))
    return rows + [r for _, _, r in items]


def _case_time(case: CaseData, e: Event) -> float:
    """A case event has no stream time: place it at its run's start (started, resumed) or at
    the last event before it (stopped)."""
    if e.data.get("event") == "stopped":
        return case.end_s
    runs = sum(1 for x in case.events if x.kind == "case" and x.data.get("event") == "resumed"
               and x.seq <= e.seq)
    return case.run_starts_s[min(runs, len(case.run_starts_s) - 1)]


def acknowledgement_rows(case: CaseData) -> list[list[str]]:
    rows = [["time", "UTC", "what", "alarm", "by"]]
    for e in case.of("alarm_event"):
        d = e.data
        if d.get("event") in ("acknowledged", "audio_paused"):
            rows.append([duration(e.case_s), stored_at(case, e, e.case_s),
                         str(d.get("event")).replace("_", " "), str(d.get("alarm_id", "")),
                         _who(str(d.get("cause", "")))])
    return rows


def moments(case: CaseData, sites: set[str], limit: int) -> tuple[list[Event], int]:
    """What gets stacked traces: every raised physiological alarm of an evoked-potential site
    (`sites`) and every annotated event, in time order; at most `limit` (the rest counted).
    EEG/EMG alarms name a channel, not a site: they are marked on the EEG/EMG trends."""
    out = [e for e in case.events
           if (e.kind == "alarm_event" and e.data.get("event") == "raised"
               and e.data.get("kind") == "physiological" and e.site in sites
               and e.data.get("cause") != "restore")  # a restart repeats a latched alarm
           or (e.kind == "annotation" and sites)]
    out.sort(key=lambda e: (e.case_s, e.seq))
    return out[:limit], max(0, len(out) - limit)


def describe(e: Event) -> str:
    d: dict[str, Any] = e.data
    if e.kind == "annotation":
        return f"event: {d.get('text', '')}"
    return f"alarm {d.get('priority', '')}: {d.get('alarm_id', '')}"
