"""Payloads: the envelope every message carries, JSON encoding, birth and death certificates.

Envelope (added to the shared body shapes, flat): seq (per topic stream, persisted), msg_id
(uuid4, for de-duplication), device, t_utc (publish time unless the body has its own t_utc, as an
alarm event does: then the event time is kept).
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np

from appliance import __version__


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(body: dict[str, Any], seq: int, device: str) -> dict[str, Any]:
    out = dict(body)
    out["seq"] = seq
    out["msg_id"] = str(uuid.uuid4())
    out["device"] = device
    out.setdefault("t_utc", utc_now())
    return out


def _plain(x: Any) -> Any:
    """JSON-able copy: numpy scalars/arrays to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        return _plain(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "value") and isinstance(x.value, str | int):  # enums
        return x.value
    return x


def to_json(d: dict[str, Any]) -> bytes:
    """Compact JSON; the fast path fails over to a sanitising copy (numpy, NaN, enums)."""
    try:
        return json.dumps(d, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError):
        return json.dumps(_plain(d), separators=(",", ":"), allow_nan=False,
                          default=str).encode()


def _criteria(cfg: Any, site: Any) -> dict[str, float]:
    """The criteria the site is judged by (defaults, case type and overrides resolved), so a
    console draws the real lines from the first message (config already validated)."""
    from appliance.analysis.plan import plan_site

    plan = plan_site(site, cfg.analysis, tuple(cfg.frontend.channels),
                     cfg.frontend.sample_rate_hz)
    return {k: float(v) for k, v in sorted(plan.crit.items())}


def status(cfg: Any, session: int, online: bool) -> dict[str, Any]:
    """Birth (online=True) or death (online=False, the Last Will) on the retained status topic.

    seq is derived from the session so birth < death < next birth: 2*session and 2*session+1.
    A death certificate's t_utc is when its session began (the will is fixed at CONNECT).
    """
    body: dict[str, Any] = {
        "type": "status",
        "online": online,
        "session": session,
        "software_version": __version__,
        "config_hash": cfg.hash,
    }
    if online:
        body.update(
            name=cfg.device.name,
            location=cfg.device.location,
            sample_rate_hz=cfg.frontend.sample_rate_hz,
            channels=list(cfg.frontend.channels),
            sites=[
                {"name": s.name, "modality": s.modality, "channels": list(s.channels),
                 "rate_hz": s.rate_hz, "criteria": _criteria(cfg, s)}
                for s in cfg.analysis.sites
            ],
            modalities=sorted({s.modality for s in cfg.analysis.sites}),
            keepalive_s=cfg.mqtt.keepalive_s,
        )
    return envelope(body, 2 * session + (0 if online else 1), cfg.device.id)
