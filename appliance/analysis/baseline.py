"""Baselines per site and channel: captured on command or automatically once the average is
stable and reproducible; every replaced baseline is kept in the history."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from appliance.analysis.outputs import TrendPoint


@dataclass(frozen=True)
class Baseline:
    """The judged measure of one channel when the baseline was taken, with its evidence."""

    site: str
    channel: str
    t_s: float
    reason: str  # "command" | "auto" | "restored"
    n_sweeps: int
    amplitude_uv: float
    latency_ms: float
    found: bool
    fsp: float
    split_half_r: float
    components: dict[str, dict[str, float | None]]
    # SSEP: the template later sweeps are fitted with (appliance/dsp/template.py) — the
    # average of the last template_sweeps sweeps (up to 4 moving windows) when the baseline
    # was taken, on the sweep's time axis, and that average's residual noise
    template_uv: tuple[float, ...] = ()
    template_noise_uv: float | None = None
    template_sweeps: int = 0
    # which average the measure above (n_sweeps of them) is from: "moving_average", or
    # "longer_average" (the template average: auto, when the moving one was not yet
    # reproducible), and then `why`, in words
    source: str = "moving_average"
    why: str = ""

    @classmethod
    def from_point(cls, p: TrendPoint, reason: str) -> Baseline:
        comps = {
            k: {"latency_ms": _f(v.latency_ms), "amplitude_uv": _f(v.amplitude_uv)}
            for k, v in p.components.items()
        }
        # the peak measure, never a fit against the baseline this one replaces
        return cls(p.site, p.channel, float(p.t_s), reason, int(p.n_sweeps),
                   float(p.peak_to_peak_uv), float(p.latency_ms), bool(p.found), _f(p.fsp),
                   _f(p.split_half_r), comps)

    def with_template(self, trace_uv: np.ndarray, noise_uv: float, n_sweeps: int) -> Baseline:
        return dataclasses.replace(self, template_uv=tuple(round(float(v), 5) for v in trace_uv),
                                   template_noise_uv=_f(noise_uv), template_sweeps=int(n_sweeps))

    def measure(self) -> dict[str, Any]:
        return {"amplitude_uv": self.amplitude_uv, "latency_ms": self.latency_ms,
                "found": self.found}

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("amplitude_uv", "latency_ms", "fsp", "split_half_r"):
            d[k] = _f(d[k])
        d["template_uv"] = list(self.template_uv)
        return d


def _f(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def is_stable(p: TrendPoint, fsp_min: float, r_min: float) -> bool:
    """A response is present and reproducible: found, Fsp >= fsp_min and split-half r >= r_min.
    Single sweeps (tcMEP) have neither statistic: found with confidence >= 0.5 is enough."""
    if not p.found or p.peak_to_peak_uv <= 0:
        return False
    if p.n_sweeps <= 1 or not np.isfinite(p.fsp):
        return p.components[p.primary].confidence >= 0.5
    return p.fsp >= fsp_min and np.isfinite(p.split_half_r) and p.split_half_r >= r_min


class BaselineStore:
    """Current baseline per (site, channel), consecutive-stable counters, and the history."""

    def __init__(self, policy: str = "auto", k_updates: int = 3, fsp_min: float = 3.1,
                 r_min: float = 0.6) -> None:
        self.policy = policy
        self.k_updates = int(k_updates)
        self.fsp_min = float(fsp_min)
        self.r_min = float(r_min)
        self.current: dict[tuple[str, str], Baseline] = {}
        self.history: list[dict[str, Any]] = []
        self._stable: dict[tuple[str, str], int] = {}
        self._recent: dict[tuple[str, str], list[TrendPoint]] = {}

    def get(self, site: str, channel: str) -> Baseline | None:
        return self.current.get((site, channel))

    def has_site(self, site: str) -> bool:
        return any(s == site for s, _ in self.current)

    def capture(self, points: list[TrendPoint], reason: str) -> list[Baseline]:
        """Take these points as the new baseline of their channels (old ones go to history)."""
        out = []
        for p in points:
            key = (p.site, p.channel)
            old = self.current.get(key)
            if old is not None:
                self.history.append({**old.to_json(), "replaced_t_s": float(p.t_s)})
            b = Baseline.from_point(p, reason)
            recent = self._recent.get(key, [])
            if p.n_sweeps <= 1 and len(recent) > 1:
                # single sweeps (tcMEP) vary 30-40 % from one to the next: the baseline is the
                # median of the last k_updates responses, not whichever came last
                amps = [r.peak_to_peak_uv for r in recent if r.found]
                lats = [r.latency_ms for r in recent if r.found]
                if amps:
                    b = dataclasses.replace(b, amplitude_uv=float(np.median(amps)),
                                            latency_ms=float(np.median(lats)))
            self.current[key] = b
            out.append(b)
        return out

    def replace(self, b: Baseline) -> None:
        """Swap a current baseline for an amended copy (its template attached)."""
        self.current[(b.site, b.channel)] = b

    def observe(self, points: list[TrendPoint], ready: Callable[[int], bool] | None = None,
                longer: Callable[[], list[TrendPoint] | None] | None = None) -> list[Baseline]:
        """Count stable updates per channel; under the auto policy, capture a channel without a
        baseline once it has been stable for k_updates consecutive updates and `ready(i)`
        (points[i]'s template is precise enough; none: always).

        `longer()`: the same points measured on a longer average (SSEP: the site's template
        average), or None. A channel without a baseline whose moving average is not stable
        while the longer one is counts the update as stable, as one averages more sweeps when
        a response is not yet reproducible in the usual number; captured then, its baseline
        is measured on the longer average and says so (`source`, `why`)."""
        due, whys = [], []
        longer_pts: list[TrendPoint] | None = None
        for i, p in enumerate(points):
            key = (p.site, p.channel)
            self._recent[key] = (self._recent.get(key, []) + [p])[-self.k_updates:]
            stable, why = is_stable(p, self.fsp_min, self.r_min), ""
            if (not stable and longer is not None and self.policy == "auto"
                    and key not in self.current):
                if longer_pts is None:  # measured once per update, only when needed
                    longer_pts = longer() or []
                q = longer_pts[i] if longer_pts else None
                if q is not None and is_stable(q, self.fsp_min, self.r_min):
                    stable, why, p = True, self._why(p, q), q
            n = self._stable.get(key, 0) + 1 if stable else 0
            self._stable[key] = n
            if (self.policy == "auto" and key not in self.current and n >= self.k_updates
                    and (ready is None or ready(i))):
                due.append(p)
                whys.append(why)
        out = self.capture(due, "auto") if due else []
        for j, why in enumerate(whys):
            if why:
                out[j] = dataclasses.replace(out[j], source="longer_average", why=why)
                self.replace(out[j])
        return out

    def _why(self, p: TrendPoint, q: TrendPoint) -> str:
        return (f"the {p.n_sweeps}-sweep average was not reproducible (Fsp {p.fsp:.2f}, "
                f"split-half r {p.split_half_r:.2f}; stable is Fsp >= {self.fsp_min:g} and "
                f"r >= {self.r_min:g}); the longer {q.n_sweeps}-sweep average was (Fsp "
                f"{q.fsp:.2f}, r {q.split_half_r:.2f})")

    def state(self) -> dict[str, Any]:
        return {
            "current": [b.to_json() for b in self.current.values()],
            "history": list(self.history),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of state() (crash recovery): replaces current baselines and history."""
        self.current = {}
        for d in state.get("current", []):
            d = dict(d)
            d["reason"] = d.get("reason", "restored")
            d["amplitude_uv"] = float(d["amplitude_uv"])
            for k in ("latency_ms", "fsp", "split_half_r"):
                d[k] = float(d[k]) if d.get(k) is not None else np.nan
            d["template_uv"] = tuple(float(v) for v in d.get("template_uv") or ())
            d.setdefault("template_noise_uv", None)
            d["template_sweeps"] = int(d.get("template_sweeps") or 0)
            d.setdefault("source", "moving_average")
            d.setdefault("why", "")
            b = Baseline(**{k: d[k] for k in Baseline.__dataclass_fields__})
            self.current[(b.site, b.channel)] = b
        self.history = list(state.get("history", []))
