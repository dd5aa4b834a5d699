"""Commands over MQTT 5 request/response: fuzzed payloads always get exactly one valid reply and
never crash the link; authorisation by allow-list; a slow or failing handler yields an error
reply and never holds up alarms; the safe settings subset applies."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mqtt_support import BASE, Collector, load_schemas, make_cfg, request

from appliance.commands import COMMANDS
from appliance.errors import CommandError
from appliance.outputs.mqtt import MqttLink

ARG_NAMES = sorted({a for spec in COMMANDS.values() for a in spec.args}) + ["x", ""]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=8,
)
payloads = st.one_of(
    st.binary(max_size=64),
    st.dictionaries(st.sampled_from(ARG_NAMES), json_values, max_size=3).map(
        lambda d: json.dumps(d).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b"x" * 5000),
)
# Topic levels the broker accepts: mosquitto disconnects a client that publishes to a topic with
# control characters or non-characters, so such requests never reach the appliance.
names = st.sampled_from(sorted(COMMANDS)) | st.text(
    st.characters(blacklist_characters="/+#", blacklist_categories=("Cs", "Cc", "Cn", "Co")),
    min_size=1, max_size=20)


class Handler:
    """The appliance's side: records calls; 'annotate' with text 'boom' raises."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    def __call__(self, name: str, args: dict[str, Any], client: str) -> dict[str, Any]:
        self.calls.append((name, args, client))
        if args.get("text") == "boom":
            raise RuntimeError("handler exploded")
        if args.get("label") == "refuse":
            raise CommandError("no case while the front end is down")
        return {"done": name}


def test_mqtt_fuzzed_commands_always_answered(tmp_path: Path, broker) -> None:
    schema = load_schemas()["commandReply"]
    handler = Handler()
    sub = Collector(broker.host, broker.port, f"{BASE}/reply/#")
    link = MqttLink(make_cfg(broker.host, broker.port), tmp_path / "outbox.db", handler)
    link.start()
    counter = iter(range(10**9))
    try:
        assert link_connected(link)

        @settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])
        @given(name=names, payload=payloads)
        def one(name: str, payload: bytes) -> None:
            corr = str(next(counter)).encode()
            request(sub.c, f"{BASE}/cmd/neuro1/{name}", payload, f"{BASE}/reply/neuro1/f", corr)
            assert sub.wait_for(lambda ms: any(m.corr == corr for m in ms), 5), (
                name, payload)
            reply = next(m.body for m in sub.msgs if m.corr == corr)
            assert not list(schema.iter_errors(reply)), reply
            if name not in COMMANDS:
                assert reply["error"]["code"] == "unknown_command"

        one()
        # one reply per request, never more
        corrs = [m.corr for m in sub.msgs]
        assert len(corrs) == len(set(corrs)) == next(counter)
        # and the link still publishes
        probe = Collector(broker.host, broker.port, f"{BASE}/alarm/event")
        link.publish_alarm_event({"type": "alarm_event", "event": "raised", "alarm_id": "a"})
        assert probe.wait_for(lambda ms: len(ms) == 1, 5)
        probe.close()
        assert link.healthy()
        stats = link.stats()["commands"]
        assert stats["ok"] + stats["rejected"] == len(corrs)
        assert stats["rejected"] > 0 and stats["ok"] > 0
    finally:
        link.stop()
        sub.close()


def link_connected(link: MqttLink, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if link.stats()["connected"]:
            time.sleep(0.1)  # SUBACK for the command topics
            return True
        time.sleep(0.02)
    return False


def _ask(sub: Collector, client: str, name: str, args: dict[str, Any],
         timeout_s: float = 5.0) -> dict[str, Any]:
    corr = f"{client}-{name}-{time.monotonic()}".encode()
    request(sub.c, f"{BASE}/cmd/{client}/{name}", json.dumps(args).encode(),
            f"{BASE}/reply/{client}/x", corr)
    assert sub.wait_for(lambda ms: any(m.corr == corr for m in ms), timeout_s)
    return next(m.body for m in sub.msgs if m.corr == corr)


def test_mqtt_commands_validated_authorised_and_handed_over(tmp_path: Path, broker) -> None:
    handler = Handler()
    sub = Collector(broker.host, broker.port, f"{BASE}/reply/#")
    cfg = make_cfg(broker.host, broker.port, command_clients=["neuro1"])
    link = MqttLink(cfg, tmp_path / "outbox.db", handler)
    link.start()
    try:
        assert link_connected(link)
        r = _ask(sub, "neuro1", "start_case", {"label": "L4-L5", "procedure": "fusion"})
        assert r["ok"] and r["result"] == {"done": "start_case"}
        assert handler.calls[-1] == ("start_case", {"label": "L4-L5", "procedure": "fusion"},
                                     "neuro1")
        r = _ask(sub, "mallory", "acknowledge", {})
        assert r["error"]["code"] == "unauthorised" and "mallory" in r["error"]["message"]
        r = _ask(sub, "neuro1", "set_baseline", {"site": 7})
        assert r["error"]["code"] == "invalid_args" and "set_baseline.site" in r["error"]["message"]
        r = _ask(sub, "neuro1", "start_case", {"label": "x", "surgeon": "y"})
        assert "start_case.surgeon" in r["error"]["message"]
        r = _ask(sub, "neuro1", "annotate", {"text": "boom"})
        assert r["error"]["code"] == "failed" and "exploded" in r["error"]["message"]
        r = _ask(sub, "neuro1", "start_case", {"label": "refuse"})
        assert r["error"]["code"] == "refused" and "front end" in r["error"]["message"]
        r = _ask(sub, "neuro1", "set", {"key": "alarms.audio_pause_s", "value": 600})
        assert r["error"]["code"] == "invalid_args"  # not in the safe subset
        r = _ask(sub, "neuro1", "set", {"key": "mqtt.waveform_interval_s", "value": 2.5})
        assert r["ok"] and link.waveform_interval_s == 2.5
        assert [c[0] for c in handler.calls] == ["start_case", "annotate", "start_case"]
        # no Response Topic: the reply goes to <base>/reply/<client>
        sub.c.publish(f"{BASE}/cmd/neuro1/ping", b"", qos=1)
        assert sub.wait_for(lambda ms: any(m.topic == f"{BASE}/reply/neuro1" for m in ms), 5)
        assert link.stats()["commands"]["rejected"] == 6
    finally:
        link.stop()
        sub.close()


def test_mqtt_slow_handler_times_out_and_alarms_still_flow(tmp_path: Path, broker) -> None:
    release = threading.Event()

    def slow(name: str, args: dict[str, Any], client: str) -> dict[str, Any]:
        release.wait(10)
        return {}

    sub = Collector(broker.host, broker.port, [f"{BASE}/reply/#", f"{BASE}/alarm/event"])
    cfg = make_cfg(broker.host, broker.port, command_timeout_s=0.5)
    link = MqttLink(cfg, tmp_path / "outbox.db", slow)
    link.start()
    try:
        assert link_connected(link)
        corr = b"slow"
        request(sub.c, f"{BASE}/cmd/neuro1/acknowledge", b"{}", f"{BASE}/reply/neuro1/s", corr)
        time.sleep(0.1)
        # while the handler hangs, an alarm goes out at once
        link.publish_alarm_event({"type": "alarm_event", "event": "raised", "alarm_id": "a"})
        assert sub.wait_for(lambda ms: any(m.topic.endswith("alarm/event") for m in ms), 0.3)
        assert sub.wait_for(lambda ms: any(m.corr == corr for m in ms), 3)
        r = next(m.body for m in sub.msgs if m.corr == corr)
        assert r["error"]["code"] == "timeout"
        r = _ask(sub, "neuro1", "audio_pause", {})
        assert r["error"]["code"] == "busy"
        r = _ask(sub, "neuro1", "ping", {})  # answered by the link itself
        assert r["ok"] and r["result"]["pong"]
    finally:
        release.set()
        link.stop()
        sub.close()
