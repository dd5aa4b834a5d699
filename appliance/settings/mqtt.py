from dataclasses import dataclass

from appliance.validate import field


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = field(True, help="publish to an MQTT broker")
    host: str = field("127.0.0.1", help="broker host")
    port: int = field(1883, min=1, max=65535, help="broker port")
