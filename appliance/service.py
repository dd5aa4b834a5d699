"""`ionm run --config FILE`: the appliance. Wires the parts together and keeps them alive.

    acquisition process ──blocks──► main loop: Monitor.push ──conditions──► AlarmManager
                                        │                                      │ events
                                        ├─► CaseRecorder (queue, own thread)    ├─► Lights (own
                                        ├─► MqttLink (queue, own thread)        │   process/thread)
                                        └─► systemd Notifier                    └─► MQTT, recorder

One thread (the main loop) owns the Monitor: it is not thread-safe, so MQTT commands that touch
it are handed to the loop through a queue and answered through a Future with a timeout. The
loop calls MqttLink and CaseRecorder only through their never-blocking methods, so the safety
path (acquisition -> analysis -> alarm -> lights) never waits on the network or the disk. Case
start/stop (file creation, a join) run on a small worker thread for the same reason.
docs/service.md describes threads, the watchdog, start-up, shutdown and recovery.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import queue
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import NOT_A_MEDICAL_DEVICE, __version__
from appliance.analysis.continuous import CONTINUOUS_TYPES, command_annotation
from appliance.cli import describe_os_error, plural
from appliance.conditions import Condition, Kind, Priority
from appliance.errors import CommandError, ConfigError, IonmError
from appliance.frontend.ads1299.compiled import compiled_unavailable_reason

log = logging.getLogger("ionm.service")

OUTBOX_NAME = "mqtt-outbox.sqlite"
MQTT_UNREACHABLE_S = 5.0  # broker not connected this long -> technical LOW (outbox keeps data)
HEALTH_EVERY_S = 0.2  # health conditions, alarm tick, lights monitoring, watchdog
STATUS_EVERY_S = 1.0
# Commands that the main loop runs (everything else is refused); the MQTT link answers its own
# (ping, set) itself.
LOOP_COMMANDS = ("start_case", "stop_case", "set_baseline", "acknowledge", "audio_pause",
                 "annotate", "temg_search", "temg_intensity",
                 "emg_audio")


def acquisition_counts(h: Any) -> dict[str, Any]:
    """The front end's loss accounting (FrontEndHealth): samples missing from the stream, and
    for an ADS1299 why (overwritten before read, read too late, reader ring full), the
    corrupt frames (never data) and which reader ran."""
    extra = h.extra
    out: dict[str, Any] = {"samples": int(h.samples), "missed_samples": int(h.missed_samples),
                           "corrupt_frames": int(h.corrupt_frames)}
    for key in ("overwritten", "late_reads", "ring_overflow"):
        if key in extra:
            out[key] = int(extra[key])
    if "read_done_max_us" in extra:  # the compiled reader's latency (why samples were lost)
        out["read_done_max_us"] = round(float(extra["read_done_max_us"]), 1)
        out["reads_over_250us"] = int(extra["reads_over_250us"])
    if "reader_compiled" in extra:
        out["reader"] = "compiled" if extra["reader_compiled"] else "python"
        if not extra["reader_compiled"] and compiled_unavailable_reason():
            out["reader_note"] = compiled_unavailable_reason()  # what to install, once per topic
    return out


@dataclass
class _Command:
    name: str
    args: dict[str, Any]
    cause: str
    future: Future = field(default_factory=Future)


@dataclass
class Timeline:
    """Monotonic times of what the appliance did first, for tests, benches and the docs."""

    ready_s: float | None = None
    detected_s: dict[str, float] = field(default_factory=dict)  # condition id -> Monitor output
    detected_t_s: dict[str, float] = field(default_factory=dict)  # ... and its stream time
    raised_s: dict[str, float] = field(default_factory=dict)  # alarm id -> alarm "raised"


def resolve_state_dir(arg: str | None) -> Path:
    """--state-dir, else systemd's $STATE_DIRECTORY (StateDirectory=), else the current dir."""
    if arg:
        return Path(arg)
    env = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(env) if env else Path.cwd()


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
        self._cmds: queue.SimpleQueue[_Command] = queue.SimpleQueue()
        self._case_pool = ThreadPoolExecutor(1, thread_name_prefix="ionm-case")
        self._case_busy = threading.Event()  # a case start/stop is running: don't feed the recorder
        self.case_id: str | None = None
        self.stream_t_s = 0.0
        self.fs_hz = float(cfg.frontend.sample_rate_hz)
        self.blocks = 0
        self._last_block_s: float | None = None
        self._last_lead_off: Any = ()
        self._last_analysis_s: float | None = None
        self._mqtt_down_since: float | None = None
        self._mqtt_cond_active: Priority | None = None
        self.acquisition: Any = None
        self.monitor: Any = None
        self.audio: Any = None  # EMG loudspeaker (appliance/outputs/audio.py)
        self.manager: Any = None
        self.lights: Any = None
        self.button: Any = None
        self.stimulator: Any = None
        self.mqtt: Any = None
        self.recorder: Any = None
        self.control: Any = None
        self._owned_backends: list[Any] = []
        self._faults: list[Condition] = []
        self.analysis_errors = 0
        self._analysis_failing = False

    # ------------------------------------------------------------------ start-up

    def start(self) -> None:
        """Build and start every part. Raises ConfigError / IonmError naming what failed."""
        from appliance.alarms import AlarmManager
        from appliance.analysis.monitor import Monitor
        from appliance.frontend.acquisition import Acquisition

        cfg = self.cfg
        log.warning(NOT_A_MEDICAL_DEVICE)
        log.info("ionm %s starting: device %s, front end %s at %d Hz, %s, config %s",
                 __version__, cfg.device.id, cfg.frontend.kind, cfg.frontend.sample_rate_hz,
                 plural(len(cfg.analysis.sites), "site"), cfg.hash)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.monitor = Monitor(cfg)  # plans every site: a bad site is a ConfigError now
        from appliance.outputs.audio import from_settings as audio_from_settings

        self.audio = audio_from_settings(cfg.analysis.emg_free, cfg.frontend.sample_rate_hz)
        self.manager = AlarmManager(cfg.alarms, on_event=self._on_alarm_event)
        self._start_lights()
        self._start_mqtt()  # before the recorder: restored alarms are published too
        self._start_recorder()
        self._publish_case()
        self._start_control()
        self.acquisition = Acquisition(cfg)
        self.acquisition.start()
        self._start_stimulator()
        self.notifier.status(f"starting: {self._status_tail()}")

    def _start_stimulator(self) -> None:
        """frontend.stimulator: trigger the external isolated stimulator from GPIO outputs. The
        line is looped back into a front-end input, so the ADC latches each stimulus on its
        sample and the analysis never relies on this thread's timing (hw/stimulus.md)."""
        if not self.cfg.frontend.stimulator:
            return
        from appliance.frontend.stimulus import StimulusScheduler
        from appliance.outputs.gpio import backend_from_settings

        backend = self._lights_backend
        if backend is None:
            backend = backend_from_settings(self.cfg.lights)
            self._owned_backends.append(backend)
        for site, pin in self.cfg.frontend.stim_pins.items():
            backend.setup_output(pin, f"stim:{site}")
        self.stimulator = StimulusScheduler.from_config(self.cfg, backend.output)
        self.stimulator.start()

    def _start_lights(self) -> None:
        from appliance.outputs.button import Button
        from appliance.outputs.gpio import backend_from_settings
        from appliance.outputs.lights import Lights

        s = self.cfg.lights
        if self._lights_backend is not None or s.backend == "recording":
            backend = self._lights_backend
            if backend is None:
                backend = backend_from_settings(s)
                self._owned_backends.append(backend)
            self.lights = Lights.from_settings(s, backend, source=self.manager.display)
            button_backend = backend
        else:
            from appliance.outputs.lights_process import LightsProcess

            self.lights = LightsProcess(s, source=self.manager.display)
            button_backend = None
            if s.button_pin >= 0:  # the button's pin lives in this process (outputs: the child)
                button_backend = backend_from_settings(s)
                self._owned_backends.append(button_backend)
        if s.lamp_test_s > 0:
            if isinstance(self.lights, Lights):
                self.lights.lamp_test(s.lamp_test_s, wait=False)
            else:
                self.lights.lamp_test(s.lamp_test_s)
        if s.button_pin >= 0 and button_backend is not None:
            self.button = Button.from_settings(
                s, button_backend, lambda: self.manager.acknowledge("button"),
                lambda: self.manager.audio_pause("button"))

    def _start_recorder(self) -> None:
        from appliance.outputs.recorder import CaseRecorder

        if not self.cfg.recording.enabled:
            log.info("recording disabled (recording.enabled = false)")
            return
        directory = Path(self.cfg.recording.directory)
        if not directory.is_absolute():
            directory = self.state_dir / directory
        try:
            self.recorder = CaseRecorder(directory, self.cfg)
            self.case_id = self.recorder.resume()
            resumed = self.case_id is not None
            if not resumed:
                self.case_id = self.recorder.start_case(self.cfg.device.id, "")
                log.info("case %s started", self.case_id, extra={"CASE_ID": self.case_id})
        except (OSError, sqlite3.Error, IonmError) as e:  # monitor on, without recording
            self.recorder = self.case_id = None
            self._fault("tech.storage", f"recording unavailable: cannot open a case in "
                        f"{str(directory)!r} ({e}); monitoring goes on without recording")
            return
        if resumed:
            self._restore_case_state()

    def _restore_case_state(self) -> None:
        """Baselines and latched alarms of a resumed case (the loop saves them on change)."""
        rec = self.recorder
        baselines = rec.state("baselines")
        n_base = 0
        if baselines:
            try:
                self.monitor.restore_baselines(baselines)
                n_base = len(baselines.get("current", []))
                for b in baselines.get("current", []):
                    rec.record("baseline", {**b, "reason": "restored"})
            except (KeyError, TypeError, ValueError) as e:
                log.error("case %s: stored baselines unreadable (%s); capturing anew",
                          self.case_id, e, extra={"CASE_ID": self.case_id})
        alarms = rec.state("alarms")
        restored = self.manager.restore(alarms) if alarms else []
        log.warning("case %s resumed: %d baselines, %d latched alarms restored", self.case_id,
                    n_base, len(restored), extra={"CASE_ID": self.case_id})

    def _start_mqtt(self) -> None:
        if not self.cfg.mqtt.enabled:
            log.info("MQTT disabled (mqtt.enabled = false)")
            return
        from appliance.outputs.mqtt import MqttLink

        self.mqtt = MqttLink(self.cfg, self.state_dir / OUTBOX_NAME, on_command=self.command)
        try:
            self.mqtt.start()
        except (OSError, sqlite3.Error) as e:  # outbox cannot be opened: monitor without MQTT
            self.mqtt = None
            self._fault("tech.mqtt", f"MQTT unavailable: outbox {OUTBOX_NAME} in "
                        f"{str(self.state_dir)!r} cannot be opened ({e})")
            return
        self._mqtt_down_since = self.clock()

    def _fault(self, cid: str, message: str) -> None:
        """A part that could not start: a technical alarm for as long as we run."""
        log.error("%s", message)
        self._faults.append(Condition(cid, Kind.TECHNICAL, Priority.MEDIUM, True, 0.0, "",
                                      message, {}))

    def _start_control(self) -> None:
        from appliance.alarms.control import ControlServer, default_socket_path

        path = default_socket_path(self.cfg.alarms)
        try:
            self.control = ControlServer(path, self.manager).start()
        except (OSError, IonmError) as e:  # `ionm alarm` unavailable; the button and MQTT work
            log.error("alarm control socket %s not available: %s", path, e)

    # ------------------------------------------------------------------ the loop

    def run(self, seconds: float | None = None) -> int:
        """Start (unless started), loop until request_stop() or `seconds`, shut down.
        Returns 0, or 1 when the loop itself failed (systemd's Restart=on-failure)."""
        next_health = next_status = next_mqtt_health = next_wd = 0.0
        wd_every = _watchdog_every_s()
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
                self._run_commands()
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
        if self.recorder is not None and not self._case_busy.is_set():
            self.recorder.write_block(block)  # queued: never waits on the disk
        self.blocks += 1
        self._last_lead_off = block.lead_off
        self.fs_hz = block.sample_rate_hz
        self.stream_t_s = block.end_sample / block.sample_rate_hz
        try:
            outputs = self.monitor.push(block)
            failed = None
        except Exception as e:  # a bug, not bad input: say so loudly, keep the loop alive
            outputs, failed = [], f"{type(e).__name__}: {e}"
            self.analysis_errors += 1
            if self.analysis_errors == 1 or self.analysis_errors % 1000 == 0:
                log.exception("analysis failed on block %d (%d failures)", block.first_sample,
                              self.analysis_errors)
        emg = self.monitor.continuous.emg
        if self.audio is not None and emg is not None:
            chunk = emg.take_audio()  # queued to the audio thread: never waits on the card
            if chunk is not None:
                self.audio.push(*chunk)
        now = self.clock()
        self._last_block_s = now
        outputs = self._analysis_condition(failed) + outputs
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
                self._record("condition", o.to_json())
                continue
            d = o.to_json()
            kind = d.get("type")
            if kind == "trend":
                if self.mqtt is not None:
                    self.mqtt.publish_trend(d)
                self._record("trend", d)
            elif kind == "waveform":
                if self.mqtt is not None:
                    self.mqtt.publish_waveform(d)
                self._record("waveform", d)
            elif kind in CONTINUOUS_TYPES:  # EEG and EMG (appliance/analysis/continuous.py)
                if self.mqtt is not None:
                    self.mqtt.publish_continuous(d)
                if kind != "eeg_raw":  # the raw EEG is in the BDF+ recording already
                    self._record(kind, d)
            elif kind == "baseline":
                baselines_changed = True
                self._record("baseline", d)
                log.info("baseline %s %s: %.2f uV, %.2f ms", d.get("site"), d.get("channel"),
                         d.get("amplitude_uv") or 0.0, d.get("latency_ms") or 0.0,
                         extra={"CASE_ID": self.case_id or ""})
        if baselines_changed:
            self._save_baselines()
        if self.timeline.ready_s is None:
            self.timeline.ready_s = now
            self.notifier.ready()
            log.info("first block analysed: READY")

    def _analysis_condition(self, failed: str | None) -> list[Condition]:
        """tech.analysis (high) while Monitor.push raises: no analysis means no alarms. The green
        lamp and the watchdog stop with it, so systemd restarts us if it persists."""
        if failed is not None and not self._analysis_failing:
            self._analysis_failing = True
            return [Condition("tech.analysis", Kind.TECHNICAL, Priority.HIGH, True,
                              self.stream_t_s, "", f"analysis failed: {failed}",
                              {"errors": self.analysis_errors})]
        if failed is None and self._analysis_failing:
            self._analysis_failing = False
            return [Condition("tech.analysis", Kind.TECHNICAL, Priority.HIGH, False,
                              self.stream_t_s, "", "analysis running again",
                              {"errors": self.analysis_errors})]
        return []

    def _health(self) -> bool:
        """Feed health conditions to the alarm manager; renew the green light; return whether
        data flow end to end (what the watchdog certifies)."""
        t = self.stream_t_s
        conds = list(self.acquisition.conditions(t))
        if self.recorder is not None and not self._case_busy.is_set():
            conds += self.recorder.conditions(t)
        conds += self._mqtt_conditions(t)
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

    def _mqtt_conditions(self, t_s: float) -> list[Condition]:
        if self.mqtt is None:
            return []
        now = self.clock()
        stats = self.mqtt.stats()
        if stats["connected"]:
            self._mqtt_down_since = None
        elif self._mqtt_down_since is None:
            self._mqtt_down_since = now
        prio: Priority | None = None
        msg = ""
        if not self.mqtt.healthy():
            prio = Priority.MEDIUM
            msg = "MQTT link failing: outbox not accepting data (" + stats["last_error"] + ")"
        elif (self._mqtt_down_since is not None
              and now - self._mqtt_down_since >= MQTT_UNREACHABLE_S):
            prio = Priority.LOW
            msg = (f"MQTT broker {self.cfg.mqtt.host}:{self.cfg.mqtt.port} unreachable for "
                   f"{now - self._mqtt_down_since:.0f} s; data kept in the outbox "
                   f"({stats['outbox_rows']} rows)")
        ev = {"connected": stats["connected"], "outbox_rows": stats["outbox_rows"],
              "last_error": stats["last_error"]}
        if prio is not None:
            self._mqtt_cond_active = prio
            return [Condition("tech.mqtt", Kind.TECHNICAL, prio, True, t_s, "", msg, ev)]
        if self._mqtt_cond_active is not None:
            prio, self._mqtt_cond_active = self._mqtt_cond_active, None
            return [Condition("tech.mqtt", Kind.TECHNICAL, prio, False, t_s, "",
                              "MQTT link restored", ev)]
        return []

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
        self._record("alarm_event", d)
        if self.recorder is not None and not self._case_busy.is_set():
            self.recorder.save_state("alarms", self.manager.state_dict())
        level = logging.WARNING if ev.event in ("raised", "escalated") else logging.INFO
        log.log(level, "alarm %s: %s (%s) %s [%s]", ev.event, ev.alarm_id or "-",
                d["priority"], ev.message, ev.cause,
                extra={"ALARM_ID": ev.alarm_id, "CASE_ID": self.case_id or ""})

    def _record(self, kind: str, d: dict[str, Any]) -> None:
        if self.recorder is not None and not self._case_busy.is_set():
            self.recorder.record(kind, d)

    def _save_acquisition_counts(self) -> None:
        """Why samples are missing, in the case record (issue 11): kept current while running."""
        if self.recorder is not None and self.case_id and not self._case_busy.is_set():
            self.recorder.save_state("acquisition", acquisition_counts(self.acquisition.health()))

    def _save_baselines(self) -> None:
        if self.recorder is not None and not self._case_busy.is_set():
            self.recorder.save_state("baselines", self.monitor.baseline_state())

    # ------------------------------------------------------------------ commands

    def command(self, name: str, args: dict[str, Any], client: str,
                timeout_s: float | None = None) -> dict[str, Any]:
        """Run a command on the main loop (MQTT's on_command; any thread). Raises CommandError
        on refusal or when the loop does not answer within `timeout_s`."""
        if name not in LOOP_COMMANDS:
            raise CommandError(f"{name}: unknown command; allowed: {', '.join(LOOP_COMMANDS)}")
        if timeout_s is None:
            timeout_s = max(0.1, self.cfg.mqtt.command_timeout_s - 0.2)
        cmd = _Command(name, dict(args), f"mqtt:{client}" if client else "cli")
        self._cmds.put(cmd)
        try:
            return cmd.future.result(timeout=timeout_s)
        except FutureTimeout:
            cmd.future.cancel()
            raise CommandError(f"{name}: the appliance did not answer within {timeout_s:.1f} s"
                               ) from None

    def _run_commands(self) -> None:
        while True:
            try:
                cmd = self._cmds.get_nowait()
            except queue.Empty:
                return
            if not cmd.future.set_running_or_notify_cancel():
                continue  # the caller gave up
            try:
                result = self._execute(cmd)
            except Exception as e:  # refused: the reply says why; monitoring goes on
                cmd.future.set_exception(e if isinstance(e, IonmError) else CommandError(
                    f"{cmd.name}: {type(e).__name__}: {e}"))
                continue
            if isinstance(result, Future):  # finished by the case worker
                result.add_done_callback(lambda f, c=cmd: _chain(f, c.future))
            else:
                cmd.future.set_result(result)
            self._record("command", {"t_s": self.stream_t_s, "command": cmd.name,
                                     "args": cmd.args, "cause": cmd.cause})

    def _execute(self, cmd: _Command) -> dict[str, Any] | Future:
        name, args = cmd.name, cmd.args
        if name == "acknowledge":
            return {"events": [e.to_json() for e in self.manager.acknowledge(cmd.cause)]}
        if name == "audio_pause":
            return {"events": [e.to_json() for e in self.manager.audio_pause(cmd.cause)]}
        if name == "set_baseline":
            captured = self.monitor.set_baseline(args.get("site"))
            for b in captured:
                self._record("baseline", {"type": "baseline", "t_s": self.stream_t_s,
                                          "site": b.site, **b.to_json()})
            self._save_baselines()
            return {"baselines": [b.to_json() for b in captured]}
        if name in ("temg_search", "temg_intensity"):
            result = (self.monitor.temg_search(args["target"]) if name == "temg_search" else
                      self.monitor.temg_intensity(args["ma"], args.get("target")))
            note = command_annotation(name, args)
            if self.recorder is not None and self.case_id is not None and note:
                self.recorder.annotate(self.stream_t_s, note)  # `ionm replay` repeats it
            return result
        if name == "emg_audio":
            if self.audio is None:
                raise CommandError("emg_audio: audio is off (analysis.emg_free.audio)")
            if "volume" in args:
                self.audio.set_volume(args["volume"])
            if "channel" in args:
                self.audio.set_channels([args["channel"]] if args["channel"] else [])
            return {"volume": self.audio.volume, "channels": list(self.audio.channels)}
        if name == "annotate":
            if self.recorder is None or self.case_id is None:
                raise CommandError("annotate: no case is being recorded")
            self.recorder.annotate(self.stream_t_s, args["text"])
            return {"t_s": round(self.stream_t_s, 3)}
        if self.recorder is None:
            raise CommandError(f"{name}: recording is disabled (recording.enabled = false)")
        if self._case_busy.is_set():
            raise CommandError(f"{name}: a case start/stop is already running; retry")
        if name == "stop_case" and self.case_id is None:
            raise CommandError("stop_case: no case is open")
        self._case_busy.set()
        if name == "start_case":
            # a new patient: new averages and baselines (the loop owns the Monitor)
            from appliance.analysis.monitor import Monitor

            self._end_analysis_conditions("new case: analysis restarted")
            self.monitor = Monitor(self.cfg)
            return self._case_pool.submit(self._case_start, args["label"],
                                          args.get("procedure", ""))
        return self._case_pool.submit(self._case_stop)

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

    def _case_start(self, label: str, procedure: str) -> dict[str, Any]:
        try:
            if self.case_id is not None:
                self.recorder.stop_case()
            self.case_id = self.recorder.start_case(label, procedure)
        finally:
            self._case_busy.clear()
        log.info("case %s started (%s)", self.case_id, procedure, extra={"CASE_ID": self.case_id})
        self.recorder.save_state("alarms", self.manager.state_dict())
        self._publish_case()
        return {"case_id": self.case_id}

    def _case_stop(self) -> dict[str, Any]:
        old = self.case_id
        try:
            self.recorder.stop_case()
            self.case_id = None
        finally:
            self._case_busy.clear()
        log.info("case %s stopped", old, extra={"CASE_ID": old})
        self._publish_case(stopped=old)
        return {"case_id": old}

    def _case_info(self) -> dict[str, Any] | None:
        from appliance.outputs import casestore

        case_dir = getattr(self.recorder, "case_dir", None)
        try:
            return casestore.case_info(Path(case_dir)) if case_dir else None
        except (OSError, sqlite3.Error):
            return None

    def _publish_case(self, stopped: str | None = None) -> None:
        if self.mqtt is None:
            return
        if self.case_id is not None:
            d = {"type": "case", "state": "running", "case_id": self.case_id}
            info = self._case_info()  # read here: start-up or the case worker, never the loop
            if info:
                d.update(label=info["label"] or "", procedure=info["procedure"] or "",
                         started_utc=_utc_z(info["started_utc"]))
        elif stopped is not None:
            d = {"type": "case", "state": "stopped", "case_id": stopped}
        else:
            d = {"type": "case", "state": "none", "case_id": None}
        self.mqtt.publish_case(d)

    def health_report(self) -> dict[str, Any]:
        """The service's part of the MQTT health message (the link adds its own "mqtt")."""
        h = self.acquisition.health()
        names = self.acquisition.channel_names
        lead_off = [c for c, a in zip(names, self._last_lead_off, strict=False) if a]
        d: dict[str, Any] = {"type": "health", "sample_rate_hz": self.fs_hz,
                             "missed_samples": int(h.missed_samples), "lead_off": lead_off,
                             "acquisition": acquisition_counts(h)}
        if self.recorder is not None:
            st = self.recorder.stats
            d["recording"] = {"case_id": self.case_id, "blocks_written": st.blocks_written,
                              "blocks_dropped": st.blocks_dropped, "free_mb": st.free_mb}
        return d

    # ------------------------------------------------------------------ status, shutdown

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
        if getattr(self, "_shut", False):
            return
        self._shut = True
        self.notifier.stopping()
        if self.manager is not None and self.monitor is not None:
            log.info("stopping: %s", self.status_line())
        if self.lights is not None:
            self.lights.set_monitoring(False)  # green dark at once: we no longer watch
        if self.acquisition is not None:
            self.acquisition.stop()
        for part, how in ((self.stimulator, "stop"), (self.button, "close"),
                          (self.control, "close"), (self.audio, "close")):
            if part is not None:
                with contextlib.suppress(Exception):
                    getattr(part, how)()
        self._case_pool.shutdown(wait=True, cancel_futures=False)
        if self.mqtt is not None:
            self.mqtt.stop(timeout_s=5.0)  # flushes queued messages into the outbox
        if self.recorder is not None:
            if self.monitor is not None and self.manager is not None and self.case_id:
                self.recorder.save_state("baselines", self.monitor.baseline_state())
                self.recorder.save_state("alarms", self.manager.state_dict())
                with contextlib.suppress(Exception):
                    self._save_acquisition_counts()
            self.recorder.close()  # the case stays open: a restart resumes it
        if self.lights is not None:
            self.lights.close()
        for b in self._owned_backends:
            with contextlib.suppress(Exception):
                b.close()
        log.info("stopped")


def _utc_z(t: str | None) -> str | None:
    """The store's ISO time with '+00:00' as MQTT's 'Z' form."""
    return t.replace("+00:00", "Z") if t else None


def _chain(src: Future, dst: Future) -> None:
    exc = src.exception()
    if exc is not None:
        dst.set_exception(exc)
    else:
        dst.set_result(src.result())


def _watchdog_every_s() -> float | None:
    from appliance.systemd import watchdog_interval_s

    return watchdog_interval_s()


def install_signal_handlers(app: Appliance) -> None:
    """SIGTERM (systemd stop) and SIGINT (Ctrl-C) ask the loop to finish cleanly."""

    def handler(signum: int, frame: Any) -> None:
        log.info("signal %s: stopping", signal.Signals(signum).name)
        app.request_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: list[str]) -> int:
    """`ionm run --config FILE [--state-dir DIR] [--seconds N]`."""
    from appliance import config
    from appliance.cli import positive_seconds
    from appliance.systemd import setup_logging

    ap = argparse.ArgumentParser(prog="ionm run", description="Run the appliance.")
    ap.add_argument("--config", required=True, help="TOML config (see deploy/config/ionm.toml)")
    ap.add_argument("--state-dir", default=None,
                    help="outbox and relative recording.directory live here "
                         "(default: $STATE_DIRECTORY, else the current directory)")
    ap.add_argument("--seconds", type=positive_seconds, default=None, help="stop after this long")
    ap.add_argument("--log-level", default="INFO",
                    choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = ap.parse_args(argv)
    setup_logging(args.log_level)
    try:
        cfg = config.load(args.config)
    except ConfigError as e:
        print(f"ionm run: config error: {e}", file=sys.stderr, flush=True)
        return 2
    app = Appliance(cfg, resolve_state_dir(args.state_dir))
    install_signal_handlers(app)
    try:
        app.start()
    except ConfigError as e:
        print(f"ionm run: config error: {e}", file=sys.stderr, flush=True)
        app.shutdown()
        return 2
    except (IonmError, OSError) as e:  # e.g. a read-only --state-dir
        why = describe_os_error(e) if isinstance(e, OSError) and not isinstance(e, IonmError) \
            else str(e)
        log.error("start-up failed: %s", why)
        app.shutdown()
        return 1
    return app.run(seconds=args.seconds)
