"""`ionm run`: the appliance. A small supervisor (supervisor.py) wires the parts and keeps them
alive; each part is its own module:

    lamps.py    alarm lights, button, stimulator outputs (GPIO)
    cases.py    case recorder, case start/stop on a worker, resume, the `case` message
    health.py   tech.mqtt / tech.analysis conditions, the front end's loss accounting
    fanout.py   where each Monitor output goes (MQTT, case record)
    main.py     the `ionm run` command line, signals
Commands from MQTT and the local control socket go through appliance/commands.py.
docs/service.md describes threads, the watchdog, start-up, shutdown and recovery.
"""

from appliance.service.health import acquisition_counts
from appliance.service.main import install_signal_handlers, main, resolve_state_dir
from appliance.service.supervisor import OUTBOX_NAME, Appliance, Timeline

__all__ = ["OUTBOX_NAME", "Appliance", "Timeline", "acquisition_counts",
           "install_signal_handlers", "main", "resolve_state_dir"]
