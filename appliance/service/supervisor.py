"""The supervisor: builds the parts, runs the main loop, shuts everything down in order.

    acquisition process ──blocks──► main loop: Monitor.push ──conditions──► AlarmManager
                                        │                                      │ events
                                        ├─► Cases (recorder: queue, own thread) ├─► lights (own
                                        ├─► MqttLink (queue, own thread)        │   process/thread)
                                        └─► systemd Notifier                    └─► MQTT, recorder

One thread (the main loop) owns the Monitor: it is not thread-safe, so commands (MQTT, the
local socket; one registry, appliance/commands.py) run on the loop in CommandBus.run_pending().
The loop calls MqttLink and the recorder only through their never-blocking methods, so the
safety path (acquisition -> analysis -> alarm -> lights) never waits on the network or the disk.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import NOT_A_MEDICAL_DEVICE, __version__
from appliance.analysis.annotated_commands import command_annotation
from appliance.analysis.monitor import BaselineEvent
from appliance.cli import plural
from appliance.commands import CommandBus, Role
from appliance.conditions import Condition, Kind, Priority
from appliance.errors import CommandError, IonmError
from appliance.service import lamps
from appliance.service.cases import Cases
from appliance.service.fanout import BaselineBoard, route_output
from appliance.service.health import AnalysisWatch, MqttWatch, acquisition_counts, fault

log = logging.getLogger("ionm.service")

OUTBOX_NAME = "mqtt-outbox.sqlite"
HEALTH_EVERY_S = 0.2  # health conditions, alarm tick, lights monitoring, watchdog
STATUS_EVERY_S = 1.0


@dataclass
class Timeline:
    """Monotonic times of what the appliance did first, for tests, benches and the docs."""

    ready_s: float | None = None
    detected_s: dict[str, float] = field(default_factory=dict)  # condition id -> Monitor output
    detected_t_s: dict[str, float] = field(default_factory=dict)  # ... and its stream time
    raised_s: dict[str, float] = field(default_factory=dict)  # alarm id -> alarm "raised"


class Appliance:
    """The running appliance for `cfg`.

    lights_backend  a GpioBackend (e.g. RecordingBackend in tests): lights and button run in
                    this process on it. None: the backend cfg.lights names, the lights in their
                    own process (LightsProcess) unless that backend cannot cross a process.
    notifier        appliance.systemd.Notifier (None: a default one; it is a no-op without
                    $NOTIFY_SOCKET).
    Call `run()` from one thread; `request_stop()` and `command()` from any thread.
    """

    def __init__(self, cfg: Any, state_dir: str | Path, *, lights_backend: Any = None,
                 notifier: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        from appliance.systemd import Notifier

        self.cfg = cfg
        self.state_dir = Path(state_dir)
        self.clock = clock
        self.notifier = notifier if notifier is not None else Notifier()
        self.timeline = Timeline()
        self._lights_backend = lights_backend
        self._stop = threading.Event()
        self.bus = CommandBus(on_ran=self._record_command)
        self.stream_t_s = 0.0
        self.fs_hz = float(cfg.frontend.sample_rate_hz)
        self.blocks = 0
        self._last_lead_off: Any = ()
        self._last_analysis_s: float | None = None
        self.acquisition: Any = None
        self.monitor: Any = None
        self.audio: Any = None  # EMG loudspeaker (appliance/outputs/audio.py)
        self.manager: Any = None
        self.gpio = lamps.Gpio()
        self.mqtt: Any = None
        self._mqtt_watch: MqttWatch | None = None
        self.cases = Cases(cfg, self.state_dir, self._publish_case, self._fault)
        self.control: Any = None
        self._faults: list[Condition] = []
        self._analysis = AnalysisWatch()
        self._shut = False

    @property
    def case_id(self) -> str | None:
        return self.cases.case_id

    @property
    def lights(self) -> Any:
        return self.gpio.lights

    # ------------------------------------------------------------------ start-up

    def start(self) -> None:
        """Build and start every part. Raises ConfigError / IonmError naming what failed."""
        from appliance.alarms import AlarmManager
        from appliance.analysis.monitor import Monitor
        from appliance.frontend.acquisition import Acquisition
        from appliance.outputs.audio import from_settings as audio_from_settings

        cfg = self.cfg
        log.warning(NOT_A_MEDICAL_DEVICE)
        log.info("ionm %s starting: device %s, front end %s at %d Hz, %s, config %s",
                 __version__, cfg.device.id, cfg.frontend.kind, cfg.frontend.sample_rate_hz,
                 plural(len(cfg.analysis.sites), "site"), cfg.hash)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.monitor = Monitor(cfg)  # plans every site: a bad site is a ConfigError now
        self.baseline_board = BaselineBoard({s.name: s.modality for s in cfg.analysis.sites})
        self.audio = audio_from_settings(cfg.analysis.emg_free, cfg.frontend.sample_rate_hz)
        self.manager = AlarmManager(cfg.alarms, on_event=self._on_alarm_event)
        self._register_commands()
        lamps.start_lights(cfg, self.manager, self._lights_backend, self.gpio)
        self._start_mqtt()  # before the recorder: restored alarms are published too
        self.cases.open(self.monitor, self.manager)
        self.cases.publish()
        self._start_control()
        self.acquisition = Acquisition(cfg)
        self.acquisition.start()
        lamps.start_stimulator(cfg, self._lights_backend, self.gpio)
        self.notifier.status(f"starting: {self._status_tail()}")

    def _start_mqtt(self) -> None:
        if not self.cfg.mqtt.enabled:
            log.info("MQTT disabled (mqtt.enabled = false)")
            return
        from appliance.outputs.mqtt import MqttLink

        mqtt = MqttLink(self.cfg, self.state_dir / OUTBOX_NAME, on_command=self.command)
        try:
            mqtt.start()
        except (OSError, sqlite3.Error) as e:  # outbox cannot be opened: monitor without MQTT
            self._fault("tech.mqtt", f"MQTT unavailable: outbox {OUTBOX_NAME} in "
                        f"{str(self.state_dir)!r} cannot be opened ({e})")
            return
        self.mqtt = mqtt
        self._mqtt_watch = MqttWatch(mqtt, self.cfg, self.clock)

    def _publish_case(self, d: dict[str, Any]) -> None:
        if self.mqtt is not None:
            self.mqtt.publish_case(d)

    def _fault(self, cid: str, message: str) -> None:
        """A part that could not start: a technical alarm for as long as we run."""
        log.error("%s", message)
        self._faults.append(fault(cid, message))

    def _start_control(self) -> None:
        from appliance.alarms.control import ControlServer, default_socket_path

        path = default_socket_path(self.cfg.alarms)
        try:
            self.control = ControlServer(path, self.bus, self.manager).start()
        except (OSError, IonmError) as e:  # `ionm alarm` unavailable; the button and MQTT work
            log.error("alarm control socket %s not available: %s", path, e)

    # ------------------------------------------------------------------ the loop

    def run(self, seconds: float | None = None) -> int:
        """Start (unless started), loop until request_stop() or `seconds`, shut down.
        Returns 0, or 1 when the loop itself failed (systemd's Restart=on-failure)."""
        from appliance.systemd import watchdog_interval_s

        next_health = next_status = next_mqtt_health = next_wd = 0.0
        wd_every = watchdog_interval_s()
        # renew the green lamp well within its time-out, whatever lights.monitoring_timeout_s is
        health_every_s = min(HEALTH_EVERY_S, self.cfg.lights.monitoring_timeout_s / 3)
        code = 0
        try:
            if self.acquisition is None:
                self.start()
            deadline = None if seconds is None else self.clock() + seconds
            while not self._stop.is_set():
                now = self.clock()
                if deadline is not None and now >= deadline:
                    break
                block = self.acquisition.get_block(timeout_s=0.05)
                if block is not None:
                    self._on_block(block)
                self.bus.run_pending()
                now = self.clock()
                if now >= next_health:
                    next_health = now + health_every_s
                    flowing = self._health()
                    if flowing and wd_every is not None and now >= next_wd:
                        self.notifier.watchdog()
                        next_wd = now + wd_every
                if now >= next_status:
                    next_status = now + STATUS_EVERY_S
                    self.notifier.status(self.status_line())
                    self._save_acquisition_counts()
                if self.mqtt is not None and now >= next_mqtt_health:
                    next_mqtt_health = now + self.cfg.mqtt.health_interval_s
                    self.mqtt.publish_health(self.health_report())
        except IonmError:
            raise  # start-up refused (config): the caller names it
        except Exception:  # a bug in the loop: exit non-zero so systemd restarts us
            log.exception("main loop failed")
            code = 1
        finally:
            self.shutdown()
        return code

    def request_stop(self) -> None:
        self._stop.set()

    def _on_block(self, block: Any) -> None:
        self.cases.write_block(block)  # queued: never waits on the disk
        self.blocks += 1
        self._last_lead_off = block.lead_off
        self.fs_hz = block.sample_rate_hz
        self.stream_t_s = block.end_sample / block.sample_rate_hz
        try:
            outputs = self.monitor.push(block)
            failed = None
        except Exception as e:  # a bug, not bad input: say so loudly, keep the loop alive
            outputs, failed = [], f"{type(e).__name__}: {e}"
            self._analysis.errors += 1
            if self._analysis.errors == 1 or self._analysis.errors % 1000 == 0:
                log.exception("analysis failed on block %d (%d failures)", block.first_sample,
                              self._analysis.errors)
        outputs = self._analysis.condition(failed, self.stream_t_s) + outputs
        emg = self.monitor.continuous.emg
        if self.audio is not None and emg is not None:
            chunk = emg.take_audio()  # queued to the audio thread: never waits on the card
            if chunk is not None:
                self.audio.push(*chunk)
        now = self.clock()
        bad = failed is not None or (len(outputs) == 1 and isinstance(outputs[0], Condition)
                                     and outputs[0].id == "analysis.bad_block")
        if not bad:  # a malformed block is counted by the Monitor, but it is not analysis
            self._last_analysis_s = now
        baselines_changed = False
        for o in outputs:
            if isinstance(o, Condition):
                if o.active and o.id not in self.timeline.detected_s:
                    self.timeline.detected_s[o.id] = now
                    self.timeline.detected_t_s[o.id] = o.t_s
                self.manager.update(o, cause="analysis")
                self.cases.record("condition", o.to_json())
            else:
                d = o.to_json()
                self.baseline_board.saw(d)
                if route_output(d, self.mqtt, self.cases.record, self.case_id):
                    self.baseline_board.taken(d, self.mqtt)
                    baselines_changed = True
        if baselines_changed:
            self._save_baselines()
        if self.timeline.ready_s is None:
            self.timeline.ready_s = now
            self.notifier.ready()
            log.info("first block analysed: READY")

    def _health(self) -> bool:
        """Feed health conditions to the alarm manager; renew the green light; return whether
        data flow end to end (what the watchdog certifies)."""
        t = self.stream_t_s
        conds = list(self.acquisition.conditions(t)) + self.cases.conditions(t)
        if self._mqtt_watch is not None:
            conds += self._mqtt_watch.conditions(t)
        conds += self._faults
        for c in conds:
            self.manager.update(c, cause="health")
        self.manager.tick()
        now = self.clock()
        limit = max(0.5, self.cfg.frontend.stall_s)
        acq_ok = self.acquisition.health().connected
        analysing = (self._last_analysis_s is not None and now - self._last_analysis_s <= limit)
        monitoring = acq_ok and analysing
        self.lights.set_monitoring(monitoring)
        lights_ok = getattr(self.lights, "alive", lambda: True)()
        mqtt_ok = self.mqtt is None or self.mqtt.healthy()
        return monitoring and lights_ok and mqtt_ok

    # ------------------------------------------------------------------ alarms -> outputs

    def _on_alarm_event(self, ev: Any) -> None:
        """Alarm manager listener (any thread): lights at once, then queued MQTT/recorder."""
        self.lights.show(self.manager.display())
        if ev.event == "raised" and ev.alarm_id not in self.timeline.raised_s:
            self.timeline.raised_s[ev.alarm_id] = self.clock()
        d = ev.to_json()
        d["t_s"] = round(self.stream_t_s, 3)  # the stream clock, as conditions and BDF+ use
        if self.mqtt is not None:
            self.mqtt.publish_alarm_event(d)
            self.mqtt.publish_active_alarms(self.manager.active_set())
        self.cases.record("alarm_event", d)
        self.cases.save_state("alarms", self.manager.state_dict)
        level = logging.WARNING if ev.event in ("raised", "escalated") else logging.INFO
        log.log(level, "alarm %s: %s (%s) %s [%s]", ev.event, ev.alarm_id or "-",
                d["priority"], ev.message, ev.cause,
                extra={"ALARM_ID": ev.alarm_id, "CASE_ID": self.case_id or ""})

    def _save_acquisition_counts(self) -> None:
        """Why samples are missing, in the case record (issue 11): kept current while running."""
        if self.case_id:
            self.cases.save_state("acquisition",
                                  lambda: acquisition_counts(self.acquisition.health()))

    def _save_baselines(self) -> None:
        self.cases.save_state("baselines", self.monitor.baseline_state)

    # ------------------------------------------------------------------ commands

    def command(self, name: str, args: dict[str, Any], client: str,
                timeout_s: float | None = None, role: Role = Role.TECHNOLOGIST
                ) -> dict[str, Any]:
        """MQTT's on_command (any thread): the registry runs it on the main loop. Raises
        CommandError on refusal or when the loop does not answer within `timeout_s`."""
        if timeout_s is None:
            timeout_s = max(0.1, self.cfg.mqtt.command_timeout_s - 0.2)
        return self.bus.call(name, args, f"mqtt:{client}" if client else "cli", role, timeout_s)

    def _record_command(self, name: str, args: dict[str, Any], cause: str) -> None:
        self.cases.record("command", {"t_s": self.stream_t_s, "command": name, "args": args,
                                      "cause": cause})

    def _register_commands(self) -> None:
        """The loop's handlers for the registry's commands (appliance/commands.py)."""
        from appliance.alarms.control import alarm_handlers

        handlers = {**alarm_handlers(self.manager),
                    "set_baseline": self._set_baseline, "annotate": self._annotate,
                    "temg_search": self._temg, "temg_intensity": self._temg,
                    "emg_audio": self._emg_audio, "start_case": self._start_case,
                    "stop_case": self._stop_case}
        for name, handler in handlers.items():
            self.bus.handle(name, handler)

    def _set_baseline(self, args: dict[str, Any], cause: str) -> dict[str, Any]:
        captured = self.monitor.set_baseline(args.get("site"))
        self._annotate_command("set_baseline", args)
        taken = [BaselineEvent(b).to_json() for b in captured]
        for d in taken:
            self.cases.record("baseline", d)
            self.baseline_board.taken(d, self.mqtt)
        self._save_baselines()
        # the baseline messages themselves: the template (hundreds of samples per channel)
        # stays inside, as on the baseline topic
        return {"baselines": taken}

    def _annotate(self, args: dict[str, Any], cause: str) -> dict[str, Any]:
        self.cases.annotate(self.stream_t_s, args["text"])
        t_s = round(self.stream_t_s, 3)
        if self.mqtt is not None:  # queued: the loop never waits on the network
            self.mqtt.publish_annotation({"type": "annotation", "t_s": t_s, "text": args["text"],
                                          "cause": cause, "case_id": self.cases.case_id})
        return {"t_s": t_s}

    def _temg(self, args: dict[str, Any], cause: str) -> dict[str, Any]:
        name = "temg_intensity" if "ma" in args else "temg_search"
        result = (self.monitor.temg_search(args["target"]) if name == "temg_search" else
                  self.monitor.temg_intensity(args["ma"], args.get("target")))
        self._annotate_command(name, args)
        return result

    def _annotate_command(self, name: str, args: dict[str, Any]) -> None:
        """A command the Monitor took, in the raw recording at this sample: `ionm replay`
        repeats it there."""
        note = command_annotation(name, args)
        if self.cases.recorder is not None and self.case_id is not None and note:
            self.cases.recorder.annotate(self.stream_t_s, note)

    def _emg_audio(self, args: dict[str, Any], cause: str) -> dict[str, Any]:
        if self.audio is None:
            raise CommandError("emg_audio: audio is off (analysis.emg_free.audio)")
        if "volume" in args:
            self.audio.set_volume(args["volume"])
        if "channel" in args:
            self.audio.set_channels([args["channel"]] if args["channel"] else [])
        return {"volume": self.audio.volume, "channels": list(self.audio.channels)}

    def _start_case(self, args: dict[str, Any], cause: str) -> Future:
        self.cases.check_can_change("start_case")
        # a new patient: new averages and baselines (the loop owns the Monitor)
        from appliance.analysis.monitor import Monitor

        self._end_analysis_conditions("new case: analysis restarted")
        self.monitor = Monitor(self.cfg)
        self.baseline_board.clear(self.mqtt, self.stream_t_s)
        return self.cases.start(args["label"], args.get("procedure", ""),
                                self.manager.state_dict)

    def _stop_case(self, args: dict[str, Any], cause: str) -> Future:
        self.cases.check_can_change("stop_case")
        return self.cases.stop()

    def _end_analysis_conditions(self, why: str) -> None:
        """The Monitor about to be replaced will never report its active conditions as ended:
        end them here, so non-latching ones go away (latched ones stay until acknowledged)."""
        active = {a["alarm_id"]: a for a in self.manager.active_set()}
        for cid in self.monitor.active_condition_ids():
            a = active.get(cid)
            if a is None or not a["active"]:
                continue
            self.manager.update(Condition(cid, Kind(a["kind"]), Priority[a["priority"].upper()],
                                          False, self.stream_t_s, a["site"], why, {}),
                                cause="analysis")

    # ------------------------------------------------------------------ status, shutdown

    def health_report(self) -> dict[str, Any]:
        """The service's part of the MQTT health message (the link adds its own "mqtt")."""
        h = self.acquisition.health()
        names = self.acquisition.channel_names
        lead_off = [c for c, a in zip(names, self._last_lead_off, strict=False) if a]
        d: dict[str, Any] = {"type": "health", "sample_rate_hz": self.fs_hz,
                             "missed_samples": int(h.missed_samples), "lead_off": lead_off,
                             "acquisition": acquisition_counts(h)}
        rec = self.cases.recorder
        if rec is not None:
            st = rec.stats
            d["recording"] = {"case_id": self.case_id, "blocks_written": st.blocks_written,
                              "blocks_dropped": st.blocks_dropped, "free_mb": st.free_mb}
        return d

    def _status_tail(self) -> str:
        sites = ", ".join(s.name for s in self.cfg.analysis.sites) or "no sites"
        return f"{plural(len(self.cfg.analysis.sites), 'site')} ({sites}); {self.fs_hz:g} Hz"

    def status_line(self) -> str:
        """One line for systemd's STATUS=: case, sites, active alarms, sample rate."""
        active = self.manager.active_set()
        top = active[0]["priority"] if active else "none"
        n_base = len(self.monitor.baselines.current)
        return (f"case {self.case_id or 'none'}; {self._status_tail()}; alarms {len(active)} "
                f"(highest {top}); baselines {n_base}; t {self.stream_t_s:.0f} s")

    def shutdown(self) -> None:
        """Stop everything in order; bounded waits. Idempotent."""
        if self._shut:
            return
        self._shut = True
        self.notifier.stopping()
        if self.manager is not None and self.monitor is not None:
            log.info("stopping: %s", self.status_line())
        if self.lights is not None:
            self.lights.set_monitoring(False)  # green dark at once: we no longer watch
        if self.acquisition is not None:
            self.acquisition.stop()
        for part, how in ((self.gpio.stimulator, "stop"), (self.gpio.button, "close"),
                          (self.control, "close"), (self.audio, "close")):
            if part is not None:
                with contextlib.suppress(Exception):
                    getattr(part, how)()
        final: dict[str, Callable[[], Any]] = {}
        if self.monitor is not None and self.manager is not None:
            final = {"baselines": self.monitor.baseline_state,
                     "alarms": self.manager.state_dict}
            if self.acquisition is not None:
                final["acquisition"] = lambda: acquisition_counts(self.acquisition.health())
        self.cases.close(final)  # finishes a case start/stop first: it may publish
        if self.mqtt is not None:
            self.mqtt.stop(timeout_s=5.0)  # flushes queued messages into the outbox
        if self.lights is not None:
            self.lights.close()
        for b in self.gpio.owned:
            with contextlib.suppress(Exception):
                b.close()
        log.info("stopped")


