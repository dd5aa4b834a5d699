"""The web console in a real browser (Debian's chromium, headless, driven by Playwright) against
`ionm run` on a simulated patient and a real mosquitto (WebSocket listener, password file, the
shipped ACL). One appliance run for the module; the tests follow a case in order: traces and
trends render (canvas pixels), the SSEP alarm shows within 1 s of being raised, a viewer's
acknowledge is refused by the broker, a technologist's acknowledge and audio pause reach the
appliance, an annotation lands in the case store, a case is started and stopped from the page.

IONM_CONSOLE_SCREENSHOTS=DIR saves the site view as DIR/console-site.png."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from console_helpers import (
    DEVICE,
    USERS,
    Stack,
    chromium_path,
    login,
    pixels,
    skip_or_fail,
    start_stack,
    stop_stack,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)
ALARM = "ssep.amplitude:L median:C4'-Fz"
BASELINE_RGB = (197, 140, 255)  # plots.js COLOURS.baseline
SITE_SEL = '.site[data-site="L median"]'


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    chromium_path()
    s = start_stack(tmp_path_factory.mktemp("console"))
    yield s
    stop_stack(s)


@pytest.fixture(scope="module")
def browser(stack: Stack) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (the `test` extra)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path())
        yield b
        b.close()


def _page(browser: Any, errors: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return page


@pytest.fixture(scope="module")
def errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def tech(browser: Any, stack: Stack, errors: list[str]) -> Any:
    page = _page(browser, errors)
    login(page, stack, "neuro1")
    page.wait_for_selector("#overview:not([hidden])", timeout=10_000)
    page.evaluate(f"location.hash = '#/d/{DEVICE}'")
    return page


@pytest.fixture(scope="module")
def viewer(browser: Any, stack: Stack, errors: list[str]) -> Any:
    page = _page(browser, errors)
    login(page, stack, "viewer1")
    page.wait_for_selector("#overview:not([hidden])", timeout=10_000)
    return page


def test_console_login_refused_and_login_never_stored(browser: Any, stack: Stack,
                                                      viewer: Any) -> None:
    page = browser.new_page()
    login(page, stack, "neuro1", password="wrong")
    page.wait_for_selector("#login-error:has-text('login refused')", timeout=10_000)
    assert "username or password" in page.inner_text("#login-error")
    page.close()
    # a good login leaves no trace of the password in the page, storage or cookies
    state = viewer.evaluate("""() => ({storage: localStorage.length + sessionStorage.length,
        cookie: document.cookie, field: document.getElementById('password').value,
        html: document.documentElement.outerHTML})""")
    assert state["storage"] == 0 and state["cookie"] == "" and state["field"] == ""
    assert USERS["viewer1"] not in state["html"]


def test_console_traces_trends_and_overview_render(tech: Any, viewer: Any, stack: Stack,
                                                   errors: list[str]) -> None:
    trace = 'canvas[data-channel="C4\'-Fz"]'
    # the first averages come a few seconds after READY; baselines ~9 s of stream later
    assert wait_for(lambda: pixels(tech, trace) > 300, 40.0), stack.log_tail()
    assert wait_for(lambda: pixels(tech, trace, BASELINE_RGB) > 50, 30.0), (
        "no baseline overlay", stack.log_tail())
    label = tech.inner_text(f"{SITE_SEL} figure.channel figcaption")
    assert "n=" in label and "baseline" in label, label
    # component markers with latency and amplitude, the quality badges
    assert "Fsp" in tech.inner_text(f"{SITE_SEL} .badges")
    # the judged fit with its standard errors (amplitude % of baseline, latency shift in ms)
    fit = re.compile(r"fit \d+ ± \d+ % · latency [+-]\d+\.\d\d ± \d+\.\d\d ms")
    assert wait_for(lambda: fit.search(tech.inner_text(f"{SITE_SEL} .badges")), 20.0), (
        tech.inner_text(f"{SITE_SEL} .badges"))
    trend = f"{SITE_SEL} .trend .u-wrap canvas"
    assert wait_for(lambda: pixels(tech, trend) > 100, 10.0)
    # the overview: the device's card and a sparkline per site
    assert viewer.inner_text(f'[data-device="{DEVICE}"]').startswith("IONM OR 7")
    assert wait_for(lambda: pixels(viewer, f'[data-device="{DEVICE}"] canvas.spark') > 20, 5.0)
    assert not errors, errors


def test_console_joining_late_overlays_the_retained_baseline(browser: Any, stack: Stack,
                                                             errors: list[str]) -> None:
    """A console opened after the baseline was taken gets it from the retained baseline topic
    (with the average it was taken from), not by having watched it happen."""
    def baseline_published() -> bool:
        with stack.observer.lock:
            return any(b.get("type") == "baseline" and b.get("channel") == "C4'-Fz"
                       and b.get("waveform") for _, _, b in stack.observer.messages)

    # the page opens only once the appliance has published the baseline (this test may run
    # first on its stack)
    assert wait_for(baseline_published, 60.0), ("no baseline published", stack.log_tail())
    page = _page(browser, errors)
    try:
        login(page, stack, "viewer1")
        page.wait_for_selector("#overview:not([hidden])", timeout=10_000)
        page.evaluate(f"location.hash = '#/d/{DEVICE}'")
        trace = 'canvas[data-channel="C4\'-Fz"]'
        assert wait_for(lambda: pixels(page, trace, BASELINE_RGB) > 50, 10.0), "no overlay"
    finally:
        page.close()


def test_console_alarm_shown_within_1s_of_being_raised(tech: Any, viewer: Any,
                                                       stack: Stack) -> None:
    def rendered(page: Any) -> dict[str, Any] | None:
        alarms = page.evaluate("window.ionm.metrics.alarms")
        return next((a for a in alarms if a["alarm_id"] == ALARM and a["rendered_ms"]), None)

    a = wait_for(lambda: rendered(tech), 45.0, 0.2)
    assert a, ("no alarm in the page", stack.log_tail())
    raised = stack.observer.events(alarm_id=ALARM, event="raised")
    assert raised and raised[0]["t_utc"] == a["t_utc"]
    t_raised_ms = _utc_ms(a["t_utc"])
    lag_ms = a["rendered_ms"] - t_raised_ms
    v = wait_for(lambda: rendered(viewer), 2.0)
    assert v, "the overview did not show the alarm"
    t_observer = next(t for t, _, m in stack.observer.messages if m.get("alarm_id") == ALARM)
    print(f"\nalarm raised -> rendered: device view {lag_ms:.0f} ms (arrived "
          f"{a['arrive_ms'] - t_raised_ms:.0f} ms), overview "
          f"{v['rendered_ms'] - t_raised_ms:.0f} ms; paho observer received at "
          f"{t_observer * 1000 - t_raised_ms:.0f} ms")
    assert 0 <= lag_ms <= 1000
    assert v["rendered_ms"] - t_raised_ms <= 1000
    li = tech.locator(f'#alarms li[data-alarm="{ALARM}"]')
    assert "high" in li.get_attribute("class") and "HIGH" in li.inner_text()


def test_console_viewer_cannot_act_and_its_ack_is_refused(viewer: Any, stack: Stack) -> None:
    viewer.evaluate(f"location.hash = '#/d/{DEVICE}'")
    viewer.wait_for_selector("#dev-rights:has-text('not authorised')", timeout=10_000)
    assert viewer.is_disabled("#ack") and viewer.is_disabled("#annotate")
    # the buttons are only a courtesy: the broker refuses the command itself
    viewer.evaluate("document.getElementById('ack').disabled = false")
    viewer.click("#ack")
    viewer.wait_for_selector("#result:has-text('refused: not authorised')", timeout=5_000)
    time.sleep(0.5)
    assert not stack.observer.events(event="acknowledged")
    assert not [m for _, t, m in stack.observer.messages if "/cmd/viewer1/" in t]  # never delivered


def test_console_ack_and_audio_pause_reach_the_appliance(tech: Any, stack: Stack) -> None:
    tech.wait_for_selector("#ack:enabled", timeout=5_000)
    tech.click("#ack")
    acked = wait_for(lambda: stack.observer.events(event="acknowledged", alarm_id=ALARM), 5.0)
    assert acked and acked[0]["cause"] == "mqtt:neuro1"
    tech.wait_for_selector("#result:has-text('acknowledged')", timeout=5_000)
    tech.click("#pause")
    paused = wait_for(lambda: stack.observer.events(event="audio_paused"), 5.0)
    assert paused and paused[0]["cause"] == "mqtt:neuro1"
    # the page shows the acknowledged state the appliance published (alarm/active)
    tech.wait_for_selector(f'#alarms li[data-alarm="{ALARM}"]:has-text("acknowledged")',
                           timeout=5_000)


def _annotations(stack: Stack) -> list[str]:
    out = []
    for db in sorted((stack.tmp / "cases").glob("*/case.sqlite")):
        with sqlite3.connect(db) as c:
            out += [json.loads(j)["text"] for (j,) in
                    c.execute("SELECT json FROM events WHERE kind = 'annotation'")]
    return out


def _case(stack: Stack) -> dict[str, Any]:
    cases = [m for _, t, m in stack.observer.messages if t.endswith(f"{DEVICE}/case")]
    return cases[-1] if cases else {}


def test_console_annotation_and_case_start_stop(tech: Any, viewer: Any, stack: Stack) -> None:
    tech.fill("#note", "screw L4 left")
    tech.click("#annotate")
    tech.wait_for_selector("#result:has-text('noted: screw L4 left')", timeout=5_000)
    assert wait_for(lambda: "screw L4 left" in _annotations(stack), 5.0), _annotations(stack)
    # the appliance publishes the mark: this page and every other console (a viewer) show it
    tech.wait_for_selector("#events:has-text('screw L4 left')", timeout=5_000)
    viewer.evaluate(f"location.hash = '#/d/{DEVICE}'")
    viewer.wait_for_selector("#events:has-text('screw L4 left')", timeout=5_000)
    assert "mqtt:neuro1" in viewer.inner_text("#events")
    if os.environ.get("IONM_CONSOLE_SCREENSHOTS"):
        out = Path(os.environ["IONM_CONSOLE_SCREENSHOTS"])
        tech.evaluate(f"location.hash = '#/d/{DEVICE}/L median'")
        time.sleep(1.5)
        tech.locator("#device").screenshot(path=str(out / "console-site.png"))
        tech.evaluate(f"location.hash = '#/d/{DEVICE}'")
    # a new case from the page, an event in it, then stop
    tech.fill("#case-label", "P-003")
    tech.fill("#case-procedure", "ACDF C5-6")
    tech.click("#start-case")
    assert wait_for(lambda: _case(stack).get("label") == "P-003"
                    and _case(stack)["state"] == "running", 10.0), _case(stack)
    tech.wait_for_selector("#dev-case:has-text('P-003')", timeout=5_000)
    tech.fill("#note", "rod placed")
    tech.click("#annotate")
    assert wait_for(lambda: "rod placed" in _annotations(stack), 5.0)
    tech.click("#stop-case")
    assert wait_for(lambda: _case(stack).get("state") == "stopped", 10.0), _case(stack)
    tech.wait_for_selector("#dev-case:has-text('no case running')", timeout=5_000)


def _utc_ms(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp() * 1000.0
