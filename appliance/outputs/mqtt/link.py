"""MqttLink: one owner thread makes every paho call; everyone else enqueues.

Callers (analysis, alarm manager, service) call publish_*(): a dict copy goes on a bounded
in-memory queue and a byte on a wake-up socket — never a lock held by the network, never disk.
The owner thread:
  1. drains the queue: assigns per-topic sequence numbers, wraps the envelope, commits QoS 1
     rows to the SQLite outbox (one transaction per batch) before anything is published;
     alarm rows are fsynced right after their publish call (or before it: mqtt.alarm_fsync);
  2. connects with exponential backoff and +-25 % jitter; a fresh paho Client per connection,
     so no stale in-memory paho queue competes with the outbox after a reconnect;
     `on_pre_connect` sets the death certificate (next session number) as the Last Will; a
     CONNACK stores that session number durably (failed attempts do not count), then the birth
     goes out (retained) and the command topics are subscribed;
  3. pumps outbox rows, class by class (alarm, trend, waveform), oldest first, within an
     in-flight window; a backlog (rows older than the connection) is rate-limited; expired rows
     are deleted and counted; PUBACK deletes the row;
  4. selects on the paho socket and the wake-up socket and runs paho's read/write/misc steps.
Every paho callback is wrapped: an exception is logged and counted, never kills the loop.
"""

from __future__ import annotations

import logging
import queue
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from appliance.outputs.mqtt import payloads
from appliance.outputs.mqtt.commands import CommandWorker, Handler, Request
from appliance.outputs.mqtt.outbox import Lane, NewRow, Outbox
from appliance.outputs.mqtt.security import password, ssl_context
from appliance.outputs.mqtt.topics import Topics

log = logging.getLogger("ionm.mqtt")

QUEUE_MAX = 20_000  # messages between callers and the owner thread
BATCH_MAX = 512  # messages per outbox transaction
REPLY_STREAM = "reply"  # one sequence for all command replies (their topics vary)


@dataclass
class _Pub:
    topic: str
    body: dict[str, Any]
    lane: Lane | None  # None: live only (health, replies), not stored
    retain: bool = False
    expiry_s: int | None = None
    stream: str = ""  # sequence counter name; '' = the topic
    correlation: bytes | None = None


def _refuse(name: str, args: dict[str, Any], client: str) -> dict[str, Any]:
    from appliance.errors import CommandError

    raise CommandError(f"{name}: this appliance has no command handler")


class MqttLink:
    """Publishes the appliance's outputs and receives its commands (see docs/mqtt.md)."""

    def __init__(self, cfg: Any, outbox_path: str | Path,
                 on_command: Handler | None = None) -> None:
        self.cfg = cfg
        self.s = s = cfg.mqtt
        self.device = cfg.device.id
        self.topics = Topics(s.topic_root, self.device)
        self.client_id = s.client_id or f"ionm-{self.device}"
        self._ssl = ssl_context(s)  # ConfigError now, not a silent reconnect loop later
        self._password = password(s)
        self.outbox_path = Path(outbox_path)
        self._on_command = on_command or _refuse
        self.waveform_interval_s = 0.0
        self.health_interval_s = s.health_interval_s
        self._q: queue.Queue[_Pub] = queue.Queue(QUEUE_MAX)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._outbox: Outbox | None = None
        self._worker: CommandWorker | None = None
        self._last_waveform: dict[str, float] = {}
        # owner-thread state
        self._client: mqtt.Client | None = None
        self._connected = False
        self._lost = False
        self._attempt = 0
        self._next_connect = 0.0
        self._connect_started = 0.0
        self._session = 0
        self._window = s.inflight_window
        self._broker_rmax = 20  # MQTT 5 Receive Maximum; mosquitto's default until told
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id
        self._acked: list[int] = []
        self._cursor: dict[Lane, int] = {}
        self._backlog_until = 0
        self._sync_pending = False
        self._tokens = 0.0
        self._last_refill = 0.0
        self._last_health = 0.0
        # shared counters (ints: read from any thread)
        self._heartbeat = 0.0
        self._last_roundtrip = 0.0
        self._outbox_ok = False
        self.counts: dict[str, int] = {
            "published": 0, "acked": 0, "dropped_queue": 0, "dropped_offline": 0,
            "rejected_publish": 0, "waveforms_skipped": 0, "refused_by_broker": 0,
            "callback_errors": 0, "outbox_errors": 0, "connects": 0,
        }
        self.last_error = ""

    # ---- public API (any thread, never blocks) ----------------------------------------------

    def start(self) -> None:
        """Open the outbox (ConfigError if it cannot be) and start the owner thread. One-shot:
        after stop(), make a new MqttLink."""
        if self._thread is not None or self._stopping.is_set():
            return
        self._outbox = Outbox(self.outbox_path, self.s.outbox_max_rows)
        self._outbox_ok = True
        self._session = self._outbox.counters.get("session", 0)
        self._worker = CommandWorker(
            self._on_command, self._local_command, self._queue_reply,
            self.s.command_clients, self.s.command_timeout_s,
        )
        self._heartbeat = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="ionm-mqtt", daemon=True)
        self._thread.start()

    def publish_trend(self, d: dict[str, Any]) -> None:
        self._publish("trend", d, lambda: self.topics.trend(d["modality"], d["site"]),
                      Lane.TREND, expiry_s=self.s.trend_expiry_s)

    def publish_waveform(self, d: dict[str, Any]) -> None:
        try:
            topic = self.topics.waveform(d["modality"], d["site"])
        except (KeyError, TypeError):
            return self._reject("waveform", d)
        if self.waveform_interval_s > 0:
            now = time.monotonic()
            key = f"{topic}#{d.get('channel', '')}"
            if now - self._last_waveform.get(key, -1e9) < self.waveform_interval_s:
                self.counts["waveforms_skipped"] += 1
                return None
            self._last_waveform[key] = now
        self._publish("waveform", d, lambda: topic, Lane.WAVEFORM,
                      expiry_s=self.s.waveform_expiry_s)

    def publish_continuous(self, d: dict[str, Any]) -> None:
        """EEG and EMG outputs (docs/asyncapi.yaml): trends and events on the trend lane, the
        raw EEG for display on the waveform lane."""
        kind = str(d.get("type", ""))
        lane = Lane.WAVEFORM if kind == "eeg_raw" else Lane.TREND
        expiry = self.s.waveform_expiry_s if lane == Lane.WAVEFORM else self.s.trend_expiry_s
        key = d.get("channel") or d.get("target") or ("all" if kind == "emg_event" else "")
        self._publish(kind, d, lambda: self.topics.continuous(kind, key), lane, expiry_s=expiry)

    def publish_alarm_event(self, d: dict[str, Any]) -> None:
        self._publish("alarm_event", d, lambda: self.topics.alarm_event, Lane.ALARM,
                      expiry_s=self.s.alarm_expiry_s)

    def publish_active_alarms(self, alarms: list[dict[str, Any]]) -> None:
        body = {"type": "active_alarms", "alarms": list(alarms)}
        self._publish("active_alarms", body, lambda: self.topics.alarm_active, Lane.ALARM,
                      retain=True)

    def publish_baseline(self, d: dict[str, Any]) -> None:
        """A channel's baseline with the average it was taken from, retained: a console that
        joins mid-case overlays the real baseline; `cleared` when a new case drops it."""
        self._publish("baseline", d, lambda: self.topics.baseline(d["modality"], d["site"],
                                                                  d["channel"]),
                      Lane.ALARM, retain=True)

    def publish_annotation(self, d: dict[str, Any]) -> None:
        """A technologist's event mark ("screw L4 left"): every console sees it, the records
        system keeps it (store-and-forward like the alarms)."""
        self._publish("annotation", d, lambda: self.topics.annotation, Lane.ALARM,
                      expiry_s=self.s.trend_expiry_s)

    def publish_case(self, d: dict[str, Any]) -> None:
        self._publish("case", d, lambda: self.topics.case, Lane.ALARM, retain=True)

    def publish_health(self, d: dict[str, Any]) -> None:
        self._publish("health", d, lambda: self.topics.health, None)

    def healthy(self) -> bool:
        """For the systemd watchdog: the owner thread is iterating, and either a publish
        round-trip (PUBACK) succeeded within 3 x keepalive or the outbox is accepting rows."""
        now = time.monotonic()
        if self._thread is None or not self._thread.is_alive():
            return False
        if now - self._heartbeat > 2 * self.s.connect_timeout_s + 3.0:
            return False  # owner thread stuck (e.g. a paho/TLS hang) or dead
        if self._connected and now - self._last_roundtrip < 3 * self.s.keepalive_s:
            return True
        return self._outbox_ok and not self._q.full()

    def stats(self) -> dict[str, Any]:
        """Link health (also published in every health message under "mqtt")."""
        ob = self._outbox
        c = ob.counters if ob else {}
        return {
            "connected": self._connected,
            "session": self._session,
            "outbox_rows": ob.rows if ob else 0,
            "queue_depth": self._q.qsize(),
            "inflight": len(self._inflight),
            "dropped": {
                "queue": self.counts["dropped_queue"],
                "offline": self.counts["dropped_offline"],
                "alarm": c.get("dropped.alarm", 0),
                "trend": c.get("dropped.trend", 0),
                "waveform": c.get("dropped.waveform", 0),
            },
            "expired": c.get("expired", 0),
            "refused_by_broker": self.counts["refused_by_broker"],
            "published": self.counts["published"],
            "acked": self.counts["acked"],
            "waveforms_skipped": self.counts["waveforms_skipped"],
            "rejected_publish": self.counts["rejected_publish"],
            "commands": self._worker.stats() if self._worker else {"ok": 0, "rejected": 0},
            "last_error": self.last_error[:200],
        }

    def stop(self, timeout_s: float = 5.0) -> None:
        """Flush the queue into the outbox, send the death certificate (DISCONNECT with Will),
        close. Idempotent."""
        if self._thread is None:
            return
        self._stopping.set()
        self._wake()
        self._thread.join(timeout_s)
        self._thread = None
        if self._worker:
            self._worker.close()

    close = stop

    def __enter__(self) -> MqttLink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- caller side helpers ----------------------------------------------------------------

    def _publish(self, kind: str, d: dict[str, Any], topic_fn: Callable[[], str],
                 lane: Lane | None, retain: bool = False, expiry_s: int | None = None) -> None:
        if self._stopping.is_set():
            self.counts["dropped_offline"] += 1
            return
        try:
            topic = topic_fn()
            body = dict(d)
        except (KeyError, TypeError):
            return self._reject(kind, d)
        body.setdefault("type", kind)
        self._put(_Pub(topic, body, lane, retain, expiry_s))

    def _reject(self, kind: str, d: object) -> None:
        self.counts["rejected_publish"] += 1
        if self.counts["rejected_publish"] <= 10:
            log.warning("mqtt: %s without modality/site not published: %.200r", kind, d)

    def _put(self, p: _Pub) -> None:
        try:
            self._q.put_nowait(p)
        except queue.Full:
            self.counts["dropped_queue"] += 1
            return
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass  # already awake / closing

    def _queue_reply(self, req: Request, body: dict[str, Any]) -> None:
        rt = req.response_topic
        if not rt or any(c in rt for c in "+#\0") or len(rt) > 512:
            rt = self.topics.reply(req.client)
        self._put(_Pub(rt, body, None, stream=REPLY_STREAM, correlation=req.correlation))

    def _local_command(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "ping":
            return {"pong": True, "session": self._session}
        key, value = args["key"], args["value"]  # "set", validated against SAFE_SETTINGS
        setattr(self, key.split(".", 1)[1], value)
        return {"key": key, "value": value}

    # ---- owner thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if self._stopping.is_set():
                    self._shutdown()
                    return
                self._iterate()
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("mqtt owner loop")
                time.sleep(0.05)

    def _iterate(self) -> None:
        now = time.monotonic()
        self._heartbeat = now
        self._drain()
        if self._acked:
            self._delete_acked()
        if self._client is None:
            if now >= self._next_connect:
                self._connect()
        elif not self._connected and now - self._connect_started > (
                self.s.connect_timeout_s + self.s.keepalive_s):
            self._drop_client("no CONNACK in time")
        if self._connected:
            self._pump()
            if now - self._last_health >= self.health_interval_s:
                self._put(_Pub(self.topics.health, {"type": "health"}, None))
        if self._sync_pending:  # alarm rows: power-loss safe right after they went out
            self._sync_pending = False
            self._outbox_sync()
        self._wait_io(0.25 if self._client is not None else
                      max(0.0, min(0.25, self._next_connect - now)))
        if self._lost:
            self._drop_client(self.last_error or "connection lost")

    def _drain(self) -> None:
        ob = self._outbox
        assert ob is not None
        batch: list[_Pub] = []
        while len(batch) < BATCH_MAX:
            try:
                batch.append(self._q.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return
        wall = time.time()
        rows: list[NewRow] = []
        live: list[tuple[_Pub, bytes]] = []
        seqs: dict[str, int] = {}
        durable = False
        for p in batch:
            stream = p.stream or p.topic
            seq = seqs.get(stream, ob.counters.get(stream, 0)) + 1
            seqs[stream] = seq
            if p.body.get("type") == "health":
                p.body["mqtt"] = self.stats()
            data = payloads.to_json(payloads.envelope(p.body, seq, self.device))
            if p.lane is None:
                live.append((p, data))
            else:
                durable |= p.lane == Lane.ALARM
                exp = wall + p.expiry_s if p.expiry_s else None
                rows.append(NewRow(p.lane, p.topic, data, 1, p.retain, exp))
        try:
            fsync_first = durable and self.s.alarm_fsync == "before_publish"
            ob.commit(rows, seqs, fsync_first)
            self._sync_pending |= durable and not fsync_first
            self._outbox_ok = True
        except Exception as e:
            # disk trouble: say so in health and the watchdog; still try to deliver live
            self.counts["outbox_errors"] += 1
            self._outbox_ok = False
            self.last_error = f"outbox: {e}"
            log.error("mqtt outbox commit failed: %s", e)
            live.extend((_Pub(r.topic, {}, None, r.retain), r.payload) for r in rows)
        for p, data in live:
            self._send_direct(p, data)

    def _send_direct(self, p: _Pub, data: bytes) -> None:
        if not self._connected or self._client is None:
            self.counts["dropped_offline"] += 1
            return
        props = Properties(PacketTypes.PUBLISH)
        props.ContentType = "application/json"
        if p.correlation is not None:
            props.CorrelationData = p.correlation
        info = self._client.publish(p.topic, data, qos=1, retain=p.retain, properties=props)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self.counts["published"] += 1
            if p.topic == self.topics.health:
                self._last_health = time.monotonic()

    def _pump(self) -> None:
        ob, client = self._outbox, self._client
        assert ob is not None and client is not None
        now = time.monotonic()
        rate = self.s.replay_rate_per_s
        self._tokens = min(max(1.0, rate / 10), self._tokens + (now - self._last_refill) * rate)
        self._last_refill = now
        wall = time.time()
        expired: list[int] = []
        for lane in Lane:
            while (room := self._window - len(self._inflight)) > 0:
                rows = ob.fetch(lane, self._cursor.get(lane, 0), room)
                if not rows:
                    break
                for row in rows:
                    if row.expires_at is not None and row.expires_at <= wall:
                        expired.append(row.id)
                        self._cursor[lane] = row.id
                        continue
                    if row.id <= self._backlog_until:
                        if self._tokens < 1.0:
                            ob.delete(expired, reason="expired")
                            return
                        self._tokens -= 1.0
                    props = Properties(PacketTypes.PUBLISH)
                    props.ContentType = "application/json"
                    if row.expires_at is not None:
                        props.MessageExpiryInterval = max(1, int(row.expires_at - wall))
                    info = client.publish(row.topic, row.payload, qos=row.qos,
                                          retain=row.retain, properties=props)
                    if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_QUEUE_SIZE):
                        ob.delete(expired, reason="expired")
                        self._lost = True
                        return
                    self._cursor[lane] = row.id
                    self._inflight[info.mid] = row.id
                    self.counts["published"] += 1
            if self._window - len(self._inflight) <= 0:
                break  # strict class order: lower classes wait for room
        ob.delete(expired, reason="expired")

    def _outbox_sync(self) -> None:
        assert self._outbox is not None
        try:
            self._outbox.sync()
        except Exception as e:
            self.counts["outbox_errors"] += 1
            self._outbox_ok = False
            self.last_error = f"outbox sync: {e}"

    def _delete_acked(self) -> None:
        assert self._outbox is not None
        ids, self._acked = self._acked, []
        try:
            self._outbox.delete(ids)
        except Exception as e:
            self.counts["outbox_errors"] += 1
            self.last_error = f"outbox: {e}"

    def _wait_io(self, timeout_s: float) -> None:
        client = self._client
        sock = client.socket() if client is not None else None
        rlist: list[Any] = [self._wake_r]
        wlist: list[Any] = []
        if sock is not None:
            rlist.append(sock)
            if client.want_write():
                wlist.append(sock)
            if getattr(sock, "pending", lambda: 0)() > 0:
                timeout_s = 0.0  # TLS bytes already buffered
        if not self._q.empty() or self._acked:
            timeout_s = 0.0
        try:
            r, w, _ = select.select(rlist, wlist, [], timeout_s)
        except (OSError, ValueError):  # socket closed under us
            self._lost = client is not None
            return
        if self._wake_r in r:
            try:
                while self._wake_r.recv(4096):
                    pass
            except (BlockingIOError, OSError):
                pass
        if client is None:
            return
        if sock is None:  # paho closed it (error path): reconnect
            self._lost = True
            return
        rc = mqtt.MQTT_ERR_SUCCESS
        if sock in r or getattr(sock, "pending", lambda: 0)() > 0:
            rc = client.loop_read()
        if rc == mqtt.MQTT_ERR_SUCCESS and (sock in w or client.want_write()):
            rc = client.loop_write()
        if rc == mqtt.MQTT_ERR_SUCCESS:
            rc = client.loop_misc()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            self._lost = True
            self.last_error = self.last_error or f"network: {mqtt.error_string(rc)}"

    # ---- connection lifecycle (owner thread) --------------------------------------------------

    def _connect(self) -> None:
        s = self.s
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5)
        client.on_pre_connect = self._guard(self._on_pre_connect)
        client.on_connect = self._guard(self._on_connect)
        client.on_disconnect = self._guard(self._on_disconnect)
        client.on_publish = self._guard(self._on_publish)
        client.on_message = self._guard(self._on_message)
        client.connect_timeout = s.connect_timeout_s
        client.max_inflight_messages_set(min(s.inflight_window, self._broker_rmax))
        client.max_queued_messages_set(0)
        if self._ssl is not None:
            client.tls_set_context(self._ssl)
        if s.username:
            client.username_pw_set(s.username, self._password)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0  # the outbox, not the broker session, carries state
        self._connect_started = time.monotonic()
        self._lost = False
        try:
            client.connect(s.host, s.port, keepalive=s.keepalive_s, clean_start=True,
                           properties=props)
        except Exception as e:  # refused, unreachable, TLS verification, DNS
            self.last_error = f"connect {s.host}:{s.port}: {type(e).__name__}: {e}"
            self._close_socket(client)
            self._schedule_reconnect()
            return
        self._client = client

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        assert self._outbox is not None
        # the session this attempt would be: stored only once the broker accepts it, so failed
        # reconnects do not raise the counter (the Will carries the same number as the birth)
        self._session = self._outbox.counters.get("session", 0) + 1
        death = payloads.to_json(payloads.status(self.cfg, self._session, online=False))
        client.will_set(self.topics.status, death, qos=1, retain=True)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                    reason: ReasonCode, props: Properties | None) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            self._lost = True
            return
        assert self._outbox is not None
        self._session = self._outbox.next_session()  # a real session: count it, durably
        self._connected = True
        self._attempt = 0
        self.counts["connects"] += 1
        self.last_error = ""
        rmax = getattr(props, "ReceiveMaximum", None) if props is not None else None
        if rmax:  # paho's limit is fixed per connection: it applies from the next one
            self._broker_rmax = int(rmax)
        # leave 4 of paho's slots to live messages (birth, health, replies)
        self._window = max(1, min(self.s.inflight_window, self._broker_rmax) - 4)
        self._cursor = {}
        self._inflight.clear()
        self._backlog_until = self._outbox.max_id()
        self._tokens, self._last_refill = 1.0, time.monotonic()
        birth = payloads.to_json(payloads.status(self.cfg, self._session, online=True))
        client.publish(self.topics.status, birth, qos=1, retain=True)
        if self.s.commands_enabled:
            client.subscribe(self.topics.cmd_filter, options=SubscribeOptions(qos=1))
        log.info("mqtt connected to %s:%s, session %d, %d rows to replay",
                 self.s.host, self.s.port, self._session, self._outbox.rows)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                       reason: ReasonCode, props: Properties | None) -> None:
        if not self._stopping.is_set():
            self.last_error = self.last_error or f"disconnected: {reason}"
            self._lost = True

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int,
                    reason: ReasonCode, props: Properties | None) -> None:
        self._last_roundtrip = time.monotonic()
        row = self._inflight.pop(mid, None)
        if reason.is_failure:
            # e.g. 135 not authorised: retrying would block the lane forever
            self.counts["refused_by_broker"] += 1
            self.last_error = f"broker refused a publish: {reason}"
            log.error("mqtt: broker refused publish (mid %d): %s", mid, reason)
        else:
            self.counts["acked"] += 1
        if row is not None:
            self._acked.append(row)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parsed = self.topics.parse_cmd(msg.topic)
        if parsed is None or self._worker is None:
            return
        props = msg.properties
        rt = getattr(props, "ResponseTopic", "") if props is not None else ""
        corr = getattr(props, "CorrelationData", None) if props is not None else None
        self._worker.submit(Request(parsed[0], parsed[1], bytes(msg.payload), str(rt or ""),
                                    corr))

    def _guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as e:
                self.counts["callback_errors"] += 1
                self.last_error = f"callback {fn.__name__}: {type(e).__name__}: {e}"
                log.exception("mqtt callback %s", fn.__name__)
        return guarded

    def _close_socket(self, client: mqtt.Client) -> None:
        sock = client.socket()
        if sock is not None:
            try:
                sock.close()  # no DISCONNECT: the broker publishes the Will, as it should
            except OSError:
                pass

    def _drop_client(self, why: str) -> None:
        if self._client is not None:
            self._close_socket(self._client)
        if self._connected:
            log.warning("mqtt connection lost: %s", why)
        self._client = None
        self._connected = False
        self._lost = False
        self._inflight.clear()
        self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        s = self.s
        delay = min(s.reconnect_max_s, s.reconnect_min_s * (2 ** min(self._attempt, 16)))
        self._attempt += 1
        self._next_connect = time.monotonic() + delay * random.uniform(0.75, 1.25)

    def _shutdown(self) -> None:
        try:
            self._drain()  # what callers handed over reaches the outbox
            client = self._client
            if client is not None and self._connected:
                self._pump()  # rows not yet sent get one chance before the disconnect
                deadline = time.monotonic() + 1.0
                while self._inflight and time.monotonic() < deadline:
                    self._wait_io(0.05)
            if self._acked:  # PUBACKs read in the last iteration: their rows are done
                self._delete_acked()
            if self._sync_pending:
                self._outbox_sync()
            if client is not None and self._connected:
                # reason 4: the broker publishes the Will (death certificate) for us
                client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=4))
                client.loop_write()
                self._close_socket(client)
            self._client = None
            self._connected = False
        finally:
            if self._outbox is not None:
                self._outbox.close()
            self._wake_r.close()
            self._wake_w.close()
