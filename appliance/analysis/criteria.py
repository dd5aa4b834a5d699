"""Criteria: turn each site's measures, compared with its baselines, into alarm `Condition`s.

A change counts only when reproducible: it holds on `confirm_updates` consecutive updates, or
both split halves of the current average show it. It clears after as many updates without it,
judged with hysteresis (`clear_criteria`): a 50 % alarm clears only back above 60 %, a 110 %
latency alarm only back below 105 %, so a persisting change hovering at its threshold stays
one alarm instead of flapping.
What the appliance can tell apart, and how it says so:

- one site changes                -> physiological HIGH "<family>.<criterion>:<site>:<channel>"
- every site of a family changes  -> physiological "<family>.global_change" (LOW while within
  (anaesthesia, temperature)         the site criteria, MEDIUM beyond them); the sites' HIGH
                                     alarms are withheld only when upper and lower SSEP changed
                                     together (every limb), never for both legs or both arms
- the peripheral channel (Erb, popliteal) of a site is lost
                                  -> technical MEDIUM "<family>.stimulation:<site>"; the site's
                                     central changes are not raised as physiological meanwhile
- no stimulus for N periods       -> technical MEDIUM "<family>.no_stimulus:<site>"
- noise as large as the alarm threshold, or a judged amplitude whose standard error, at its
  longest window, is over 1/4.5 of the gap between baseline and the criterion
                                  -> technical LOW "<family>.cannot_see:<site>:<channel>"
- a channel still without a usable baseline after a full window and K updates
                                  -> technical LOW "<family>.no_baseline:<site>:<channel>"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.analysis.baseline import Baseline, BaselineStore
from appliance.analysis.outputs import FitValue, TrendPoint
from appliance.conditions import Condition, Kind, Priority

Measure = dict[str, Any]

# before the first stimulus of a site: no "no stimulus" condition for this long (or the usual
# timeout, if longer), so a stimulator that starts a little after the stream (a fast BAEP rate:
# 5 periods = 0.45 s) does not raise and clear the condition within the first second
FIRST_STIMULUS_GRACE_S = 2.0
# an unchanged response must stand this many standard errors of the judged amplitude above the
# amplitude criterion, or the channel "cannot see" (cleared at CRITERION_SE_CLEAR). The fit's
# window grows to reach SE 0.1 (5 SE from a 50 % criterion) but stops at its longest; at the
# issue's higher noise it stays at 0.10-0.17, and a 30 %/h fade (0.76 of baseline after
# 48 min) then read below 50 % for two updates 3-5 times per 8 h (docs/detection.md)
CRITERION_SE = 4.5
CRITERION_SE_CLEAR = 5.0


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


@dataclass
class SiteRules:
    """What criteria need to know about one site."""

    name: str
    family: str
    modality: str
    judge: Callable[[Measure, Measure, dict], list[str]]
    crit: dict[str, float]
    roles: dict[str, str]  # channel -> role


@dataclass
class _State:
    bad: int = 0  # consecutive updates with the change
    good: int = 0  # consecutive updates without it (while active)
    active: bool = False
    withheld: bool = False  # the change was withheld at the last update (global, stimulation)
    # raised MEDIUM on an imprecise fit: the fit's sweep count it waits a window beyond
    medium_from: int | None = None
    loss_from: int | None = None  # raised as a loss: the sweep count the next recent third follows
    evidence: dict[str, Any] = field(default_factory=dict)


def clear_criteria(crit: dict[str, float], base_latency_ms: float) -> dict[str, float]:
    """The criteria an active alarm must get back inside to clear: amplitude fractions raised
    by `clear_amplitude_margin` (of baseline), latency limits lowered by `clear_latency_margin`
    (of the baseline latency). Criteria that are off (0) stay off."""
    amp = crit.get("clear_amplitude_margin", 0.0)
    lat = crit.get("clear_latency_margin", 0.0)
    out = dict(crit)
    for key in ("amplitude_ratio_min", "shift_amplitude_ratio_min", "peripheral_ratio_min"):
        if out.get(key, 0.0) > 0:
            out[key] = out[key] + amp
    if "latency_ratio_max" in out:
        out["latency_ratio_max"] = max(1.0, out["latency_ratio_max"] - lat)
    if "latency_shift_ms" in out and np.isfinite(base_latency_ms):
        out["latency_shift_ms"] = max(0.0, out["latency_shift_ms"] - lat * base_latency_ms)
    return out


class Criteria:
    def __init__(self, rules: list[SiteRules], global_ratio: float = 0.7,
                 report_every_s: float = 10.0, split_half_r_min: float = 0.6) -> None:
        self.rules = {r.name: r for r in rules}
        # halves confirm a change only while they agree with each other (r >= this): two
        # noisy halves that both miss a peak are not evidence of a change
        self.split_half_r_min = float(split_half_r_min)
        self.global_ratio = float(global_ratio)
        self.report_every_s = float(report_every_s)
        self._states: dict[str, _State] = {}
        # latest central amplitude and latency ratios per site (for the global check)
        self._ratios: dict[str, tuple[float, float, bool]] = {}
        self._stim_reported: dict[str, float] = {}
        self._stim_first_t_s: dict[str, float] = {}  # stream time the site was first checked

    # -- one site's update ------------------------------------------------------------------
    def evaluate(self, site: str, points: list[TrendPoint], baselines: BaselineStore,
                 halves: dict[str, tuple[Measure, Measure]], t_s: float,
                 overdue: bool = False) -> list[Condition]:
        """One update of `site`. overdue: the site has averaged long enough that every
        channel should have its baseline by now (a channel without one cannot be judged)."""
        rules = self.rules[site]
        crit = rules.crit
        n_confirm = int(crit.get("confirm_updates", 2))
        out: list[Condition] = []
        seen: dict[str, tuple[bool, dict[str, Any], Kind, Priority, str]] = {}
        central: list[tuple[float, float, bool]] = []
        peripheral_lost = False

        for p in points:
            base = baselines.get(site, p.channel)
            # a baseline whose peak noise hid is judged by its template fit (amplitude; its
            # latency is unknown, so never a latency alarm), never by a peak-to-peak
            usable = (base is not None and base.amplitude_uv > 0
                      and (base.found or p.fit is not None))
            cid = f"{rules.family}.no_baseline:{site}:{p.channel}"
            if overdue or cid in self._states:
                seen[cid] = (overdue and not usable,
                             {"channel": p.channel, "n_sweeps": int(p.n_sweeps),
                              "fsp": _r(p.fsp, 3), "split_half_r": _r(p.split_half_r, 3),
                              "policy": baselines.policy},
                             Kind.TECHNICAL, Priority.LOW,
                             f"{site} {p.channel}: no usable baseline yet (Fsp "
                             f"{p.fsp:.1f}): this channel is not being judged")
            if not usable:
                continue
            now = p.measure()
            role = rules.roles.get(p.channel, "")
            # peak-picked halves count only while they agree (two noisy halves that both miss
            # a peak are no evidence); fitted halves never "miss" and always count
            agree = bool(np.isfinite(p.split_half_r) and p.split_half_r >= self.split_half_r_min)
            p_halves = halves.get(p.channel) if agree or p.fit is not None else None
            ev = _evidence(p, base, crit)
            relaxed = clear_criteria(crit, base.latency_ms)
            if role == "peripheral":
                cid = f"{rules.family}.stimulation:{site}"
                ratio_min = (relaxed if self._active(cid) else crit).get(
                    "peripheral_ratio_min", 0.5)
                bad = now["amplitude_uv"] < ratio_min * base.amplitude_uv
                split = _halves_agree(p_halves,
                                      lambda m, thr=ratio_min * base.amplitude_uv:
                                      m["amplitude_uv"] < thr)
                msg = (f"{site}: peripheral response ({p.channel}) lost or below "
                       f"{ratio_min:.0%} of baseline: check stimulator and electrodes")
                seen[cid] = (bad, {**ev, "split_half_agrees": split}, Kind.TECHNICAL,
                             Priority.MEDIUM, msg)
                if bad and (self._bad(cid) + 1 >= n_confirm or split):
                    peripheral_lost = True
                continue
            base_m = base.measure()
            violations = rules.judge(now, base_m, crit)
            amp_ratio = now["amplitude_uv"] / base.amplitude_uv
            lat_ratio = (now["latency_ms"] / base.latency_ms
                         if now["found"] and base.latency_ms > 0 else np.nan)
            # the global check sees a change as soon as the fastest site check could (the
            # fit's recent sweeps), or one site would be raised before every site is seen
            fast_ratio = now.get("amplitude_recent_uv", now["amplitude_uv"]) / base.amplitude_uv
            central.append((fast_ratio, lat_ratio, bool(violations)))
            cleared = rules.judge({**now, "amplitude_uv": now.get("amplitude_clear_uv",
                                                                 now["amplitude_uv"])},
                                  base_m, relaxed)
            a_min = crit.get("amplitude_ratio_min", 0.0)
            see_cid = f"{rules.family}.cannot_see:{site}:{p.channel}"
            f = p.fit
            # a loss is judged from the recent sweeps alone: the channel's precision is the
            # one its window had (a dip of that third in a noisy fade reads as a loss)
            imprecise = (self._active(see_cid) if f is not None and f.lost
                         else _imprecise(f, a_min, self._active(see_cid)))
            for name in _criteria_names(rules.family):
                cid = f"{rules.family}.{name}:{site}:{p.channel}"
                active = self._active(cid)
                bad = name in (cleared if active else violations)
                # a latency that cannot be measured now has not recovered: an active latency
                # alarm holds until one is measured back inside (else it flaps with the noise)
                bad = bad or (active and name == "latency" and not now["found"])
                split = _halves_agree(
                    p_halves, lambda m, name=name, b=base_m: name in rules.judge(m, b, crit))
                msg = _message(rules, name, p, now, base, amp_ratio)
                prio = Priority.HIGH
                # a latency is as precise as its own shift is (not as the amplitude): a full
                # response's latency is sharp where its amplitude cannot judge 50 %
                lat = name == "latency"
                gap_ms = (crit.get("latency_ratio_max", 0.0) - 1.0) * base.latency_ms
                imp = (_latency_imprecise(f, gap_ms) if lat and f is not None
                       else imprecise)
                if f is not None and crit.get("confirm_imprecise", 0.0):
                    # what confirms it holds only sweeps newer than the raise: the next whole
                    # window (its own fit, never a lost recent third's), or for a loss the
                    # next recent third
                    window, shown = ((f.latency_sweeps, name in violations) if lat
                                     else (f.window_sweeps, f.window_ratio < a_min))
                    amp = name == "amplitude"
                    prio = self._confirmed_priority(
                        cid, imp, name in violations, shown, f.sweeps_seen, window,
                        amp and f.lost, amp and f.recent_ratio < a_min, f.recent_sweeps)
                    if prio is Priority.MEDIUM:
                        more = f.recent_sweeps if amp and f.lost else window
                        se = (f"SE {f.se:.0%} of baseline" if not lat
                              else f"SE {f.latency_se_ms:.2f} ms against a {gap_ms:.2f}-ms "
                              "criterion" if f.found else "no latency measurable now")
                        msg += (f"; MEDIUM while the measure is imprecise ({se}): HIGH if "
                                f"the next {more} sweeps show it too")
                seen[cid] = (bad, {**ev, "split_half_agrees": split,
                                   "imprecise": bool(imp)}, Kind.PHYSIOLOGICAL, prio, msg)
            # noise as large as the alarm threshold: a 50 % drop could not be seen; or the
            # judged amplitude too imprecise for the criterion (false alarms in a fade)
            thr = a_min * base.amplitude_uv
            if p.n_sweeps > 1 and thr > 0:
                cid = see_cid
                noisy = bool(np.isfinite(p.residual_noise_uv) and p.residual_noise_uv > thr)
                msg = (f"{site} {p.channel}: residual noise {p.residual_noise_uv:.2f} uV "
                       f"is as large as the alarm threshold ({thr:.2f} uV)")
                if not noisy and imprecise and f is not None:
                    noisy = True
                    msg = _imprecise_message(site, p.channel, f, a_min, crit)
                seen[cid] = (noisy, {**ev, "amplitude_se": _r(f.se, 4) if f else None},
                             Kind.TECHNICAL, Priority.LOW, msg)

        if central:  # the site's central channels together (their mean is steadier)
            amp = float(np.mean([c[0] for c in central]))
            lats = [c[1] for c in central if np.isfinite(c[1])]
            lat = float(np.mean(lats)) if lats else np.nan
            self._ratios[site] = (amp, lat, any(c[2] for c in central))
        # Demote a site's change to the global condition only when "every limb" changed: upper
        # and lower SSEP together. Both legs alone may be the cord; both arms alone may be the
        # cervical cord — then the sites' own alarms stand (the global condition is shown too).
        is_global = self._is_global(site) and self._every_limb(rules.family)

        for cid, (bad, ev, kind, prio, msg) in seen.items():
            st = self._states.setdefault(cid, _State())
            confirmed_split = bool(bad and ev.get("split_half_agrees"))
            suppress = ""
            if kind is Kind.PHYSIOLOGICAL and bad:
                if peripheral_lost:
                    suppress = "peripheral response lost: stimulation fault, not a central change"
                elif is_global:
                    suppress = "every site changed together: reported as a global change"
            # a change that was just withheld (global, stimulation) must hold on its own for
            # n_confirm updates before it is a site alarm: sites lag a global change by
            # different amounts, and the slowest would otherwise look like a site change
            # the moment the others recover (its halves agree about its own window)
            confirmed_split = confirmed_split and not st.withheld
            st.withheld = bool(suppress)
            out += self._step(st, cid, bad and not suppress, confirmed_split, n_confirm, kind,
                              prio, site, msg, {**ev, "confirmed_by": None}, t_s)
        out += self._global(rules.family, t_s, n_confirm)
        return out

    def quiet(self, site: str, channel: str) -> bool:
        """No physiological criterion of this channel is raised or counting a change."""
        family = self.rules[site].family
        return not any(self._active(cid) or self._bad(cid) for cid in (
            f"{family}.{name}:{site}:{channel}" for name in _criteria_names(family)))

    def _active(self, cid: str) -> bool:
        st = self._states.get(cid)
        return bool(st and st.active)

    def _bad(self, cid: str) -> int:
        st = self._states.get(cid)
        return st.bad if st else 0

    def _confirmed_priority(self, cid: str, imprecise: bool, bad_now: bool, shown: bool,
                            sweeps_seen: int, window: int, lost: bool, recent_low: bool,
                            recent: int) -> Priority:
        """The priority of a physiological criterion of a channel with a template fit. While
        the fit is too imprecise for its criterion (`_imprecise`), a change is raised MEDIUM:
        two consecutive updates share all but a few sweeps, so they confirm little, and a slow
        fade then crosses a 50 % line by noise alone. It turns HIGH once a window of sweeps all
        newer than the raise shows the change too (`shown`: beyond the criterion itself, not
        only short of the clearing level), else the next such window is waited for. A change
        raised as a loss (`lost`: judged from the recent `recent` sweeps) is also confirmed by
        the next recent sweeps, all newer, reading below the criterion (`recent_low`; one look:
        a true loss reads far below it, a dip in a fade rarely twice). At once when the fit
        turns precise with the change beyond the criterion (`bad_now`)."""
        st = self._states.setdefault(cid, _State())
        if not st.active:  # a raise at this update takes this priority
            st.medium_from = sweeps_seen if imprecise else None
            st.loss_from = sweeps_seen if imprecise and lost else None
            return Priority.MEDIUM if imprecise else Priority.HIGH
        if st.medium_from is None:
            return Priority.HIGH
        turned = sweeps_seen - st.medium_from >= window
        loss_turned = st.loss_from is not None and sweeps_seen - st.loss_from >= recent
        if (turned and shown) or (loss_turned and recent_low) or (bad_now and not imprecise):
            st.medium_from = st.loss_from = None
            return Priority.HIGH
        if turned:  # not shown there: wait for the next window of new sweeps
            st.medium_from = sweeps_seen
        if loss_turned:  # one look only: a true loss reads below the criterion there at once
            st.loss_from = None
        return Priority.MEDIUM

    def _step(self, st: _State, cid: str, bad: bool, split: bool, n_confirm: int, kind: Kind,
              prio: Priority, site: str, msg: str, ev: dict[str, Any],
              t_s: float) -> list[Condition]:
        if bad:
            st.bad += 1
            st.good = 0
            if not st.active and (st.bad >= n_confirm or split):
                st.active = True
                ev["confirmed_by"] = ("split_half" if split and st.bad < n_confirm
                                      else f"{st.bad} consecutive updates")
            elif st.active:
                ev["confirmed_by"] = st.evidence.get("confirmed_by")
        else:
            st.bad = 0
            if st.active:
                st.good += 1
                if st.good >= n_confirm:
                    st.active = False
                    st.good = 0
                    st.evidence = ev
                    return [Condition(cid, kind, prio, False, t_s, site,
                                      f"cleared: {msg}", ev)]
        if st.active:
            st.evidence = ev
            return [Condition(cid, kind, prio, True, t_s, site, msg, ev)]
        return []

    # -- global change across every site of a family -----------------------------------------
    def _family_sites(self, family: str) -> list[str]:
        return [s for s, r in self.rules.items() if r.family == family and s in self._ratios]

    def _is_global(self, site: str) -> bool:
        sites = self._family_sites(self.rules[site].family)
        if len(sites) < 2 or site not in sites:
            return False
        crit = self.rules[site].crit
        lat_max = crit.get("latency_ratio_max", 1.1)
        lat_global = 1.0 + (lat_max - 1.0) / 2.0
        amp_global = self.global_ratio
        st = self._states.get(f"{self.rules[site].family}.global_change")
        if st is not None and st.active:  # hysteresis, as for the site criteria
            amp_global += crit.get("clear_amplitude_margin", 0.0)
            lat_global -= crit.get("clear_latency_margin", 0.0) / 2.0
        amp = all(self._ratios[s][0] < amp_global for s in sites)
        lat = all(self._ratios[s][1] > lat_global for s in sites)
        return amp or lat

    def _every_limb(self, family: str) -> bool:
        mods = {self.rules[s].modality for s in self._family_sites(family)}
        return family == "ssep" and {"ssep_upper", "ssep_lower"} <= mods

    def _global(self, family: str, t_s: float, n_confirm: int) -> list[Condition]:
        sites = self._family_sites(family)
        if len(sites) < 2:
            return []
        bad = self._is_global(sites[0])
        beyond = bad and all(self._ratios[s][2] for s in sites)
        prio = Priority.MEDIUM if beyond else Priority.LOW
        ev = {"sites": {s: {"amplitude_ratio": _r(self._ratios[s][0], 3),
                            "latency_ratio": _r(self._ratios[s][1], 3)} for s in sites},
              "global_ratio": self.global_ratio, "beyond_site_criteria": beyond,
              "site_alarms_suppressed": bool(bad and self._every_limb(family))}
        cid = f"{family}.global_change"
        st = self._states.setdefault(cid, _State())
        msg = (f"{family.upper()} changed on every site at once "
               f"({', '.join(sites)}): check anaesthesia, temperature, blood pressure")
        conds = self._step(st, cid, bad, False, n_confirm, Kind.PHYSIOLOGICAL, prio, "", msg,
                           {**ev, "confirmed_by": None}, t_s)
        return [Condition(c.id, c.kind, prio, c.active, c.t_s, c.site, c.message, c.evidence)
                for c in conds]

    # -- stimulus presence ------------------------------------------------------------------
    def stimulus(self, site: str, t_s: float, last_stim_t_s: float | None, n_stimuli: int,
                 period_s: float, timeout_periods: float) -> list[Condition]:
        """No stimulus for > timeout_periods x period: technical MEDIUM; reported when raised,
        every report_every_s while present, and once when stimuli resume."""
        rules = self.rules[site]
        cid = f"{rules.family}.no_stimulus:{site}"
        st = self._states.setdefault(cid, _State())
        first_t_s = self._stim_first_t_s.setdefault(cid, t_s)
        if last_stim_t_s is None:  # none yet: count from the start, give the stimulator time
            since = t_s - first_t_s
            missing = since > max(timeout_periods * period_s, FIRST_STIMULUS_GRACE_S)
        else:
            since = t_s - last_stim_t_s
            missing = since > timeout_periods * period_s
        ev = {"seconds_since_stimulus": round(since, 3), "expected_period_s": round(period_s, 4),
              "timeout_periods": timeout_periods, "stimuli_seen": int(n_stimuli)}
        msg = (f"{site}: no stimulus detected for {since:.1f} s (expected every "
               f"{period_s:.2f} s): check stimulator and trigger cable")
        if missing:
            last = self._stim_reported.get(cid)
            if st.active and last is not None and t_s - last < self.report_every_s:
                return []
            st.active = True
            self._stim_reported[cid] = t_s
            return [Condition(cid, Kind.TECHNICAL, Priority.MEDIUM, True, t_s, site, msg, ev)]
        if st.active:
            st.active = False
            self._stim_reported.pop(cid, None)
            return [Condition(cid, Kind.TECHNICAL, Priority.MEDIUM, False, t_s, site,
                              f"cleared: {site}: stimuli detected again", ev)]
        return []

    def active_ids(self) -> list[str]:
        return sorted(k for k, s in self._states.items() if s.active)


def _criteria_names(family: str) -> tuple[str, ...]:
    return {"ssep": ("amplitude", "latency"),
            "baep": ("wave_v_lost", "amplitude", "latency_amplitude"),
            "tcmep": ("lost", "amplitude")}[family]


def _imprecise(f: FitValue | None, a_min: float, was: bool) -> bool:
    """The judged amplitude's SE, at its longest window, is too large for the criterion: an
    unchanged response stands less than CRITERION_SE SEs above it (CRITERION_SE_CLEAR once
    said). Never while the window still grows after a baseline, nor for a loss (judged from
    the recent sweeps alone; the caller holds the channel's state meanwhile)."""
    k_se = CRITERION_SE_CLEAR if was else CRITERION_SE
    return bool(f is not None and a_min > 0 and f.window_full and not f.lost
                and (1.0 - a_min) < k_se * f.se)


def _latency_imprecise(f: FitValue, gap_ms: float) -> bool:
    """The judged latency's SE is too large for its criterion: the baseline latency stands
    less than CRITERION_SE SEs below it (gap_ms away), or there is no latency to judge."""
    return not (gap_ms > 0 and f.found and gap_ms >= CRITERION_SE * f.latency_se_ms)


def _imprecise_message(site: str, channel: str, f: FitValue, a_min: float,
                       crit: dict[str, float]) -> str:
    where = f"{site} {channel}: "
    if f.lost:  # the window's precision is not judged while a loss is
        return (where + f"the judged amplitude was too imprecise for the {a_min:.0%} "
                "criterion before it read lost; held until the window is judged again")
    then = ("a change is raised MEDIUM until a window of new sweeps shows it too, "
            if crit.get("confirm_imprecise", 0.0) else "a slow fade may raise it falsely, ")
    return (where + f"the judged amplitude's standard error is {f.se:.0%} of baseline over "
            f"its longest window ({f.n_sweeps} sweeps), so an unchanged response stands only "
            f"{(1.0 - a_min) / f.se:.1f} SE above the {a_min:.0%} criterion "
            f"({CRITERION_SE:g} needed): {then}and a drop is seen late. Lower the noise "
            "(electrodes, impedances)")


def _halves_agree(halves: tuple[Measure, Measure] | None,
                  test: Callable[[Measure], bool]) -> bool:
    """Both split halves of the current average show the change on their own."""
    if halves is None:
        return False
    return bool(test(halves[0]) and test(halves[1]))


def _evidence(p: TrendPoint, base: Baseline, crit: dict[str, float]) -> dict[str, Any]:
    m = p.measure()
    fit = p.fit.to_json() if p.fit is not None else None
    return {
        "measure": m["measure"],  # what was judged: "template_fit" or "peak_to_peak"
        "fit": fit,
        "average": {"t_s": _r(p.t_s, 3), "n_sweeps": int(p.n_sweeps), "fsp": _r(p.fsp, 3),
                    "residual_noise_uv": _r(p.residual_noise_uv),
                    "split_half_r": _r(p.split_half_r, 3), "filter": p.filter},
        "channel": p.channel,
        "component": p.primary,
        "now": {"amplitude_uv": _r(m["amplitude_uv"]), "latency_ms":
                _r(m["latency_ms"]) if m["found"] else None, "found": m["found"],
                "peak_to_peak_uv": _r(p.peak_to_peak_uv),
                "peak_latency_ms": _r(p.latency_ms) if p.found else None},
        "baseline": {"amplitude_uv": _r(base.amplitude_uv), "latency_ms": _r(base.latency_ms),
                     "t_s": _r(base.t_s, 3), "n_sweeps": base.n_sweeps, "reason": base.reason,
                     "source": base.source},
        "amplitude_ratio": _r(m["amplitude_uv"] / base.amplitude_uv, 3),
        "amplitude_ratio_ci95": fit["amplitude_ratio_ci95"] if fit else None,
        "latency_change_ms": _r(m["latency_ms"] - base.latency_ms) if m["found"] else None,
        "criteria": dict(crit),
    }


def _message(rules: SiteRules, name: str, p: TrendPoint, now: Measure, base: Baseline,
             amp_ratio: float) -> str:
    where = f"{rules.name} {p.channel} {p.primary}"
    if p.fit is not None:  # say which measure was judged
        lo, hi = p.fit.ci95
        how = (f" by template fit over {p.fit.n_sweeps} sweeps"
               f" (95 % CI {lo:.0%}-{hi:.0%})" if name == "amplitude"
               else f" by template fit over {p.fit.latency_sweeps} sweeps")
        if name == "amplitude" and p.fit.lost:
            how = f" by template fit over the last {p.fit.recent_sweeps} sweeps: lost"
    else:
        how = " peak to peak" if name == "amplitude" else " at the peak"
    if name in ("amplitude",):
        return (f"{where}: amplitude {amp_ratio:.0%} of baseline{how} "
                f"(alarm below {rules.crit['amplitude_ratio_min']:.0%})")
    if name == "latency":
        # an active latency alarm holds while no latency can be measured (criteria above)
        lat = (f"{now['latency_ms']:.2f} ms" if now["found"] and np.isfinite(now["latency_ms"])
               else "not measurable")
        return (f"{where}: latency {lat} vs baseline "
                f"{base.latency_ms:.2f} ms{how} "
                f"(alarm above {rules.crit['latency_ratio_max']:.0%})")
    if name == "latency_amplitude":
        return (f"{where}: wave V +{p.latency_ms - base.latency_ms:.2f} ms and amplitude "
                f"{amp_ratio:.0%} of baseline")
    if name == "wave_v_lost":
        return f"{where}: wave V lost"
    return f"{where}: response lost"
