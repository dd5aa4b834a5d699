from dataclasses import dataclass

from appliance.validate import field


@dataclass(frozen=True)
class DeviceSettings:
    id: str = field("ionm-dev", help="device id used in MQTT topics; letters, digits, '-' and '_'")
    name: str = field("IONM appliance", help="human-readable name shown in the birth message")
    location: str = field("", help="where the device is, e.g. 'OR 3' (birth message)")

    def check(self, path: str) -> None:
        import re

        from appliance.errors import ConfigError

        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.id):
            raise ConfigError(
                f"{path}.id: got {self.id!r}, allowed: 1-64 letters, digits, '-' or '_' "
                "(it becomes an MQTT topic level)."
            )
