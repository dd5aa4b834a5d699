"""Alarm manager (IEC 60601-1-8 priorities, latching, acknowledge, audio pause) and its local
control socket for `ionm alarm`. See docs/alarms.md."""

from appliance.alarms.events import AlarmEvent, Display
from appliance.alarms.manager import AlarmManager

__all__ = ["AlarmEvent", "AlarmManager", "Display"]
