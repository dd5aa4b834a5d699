"""MQTT output: the documented contract (docs/asyncapi.yaml), store-and-forward, commands.

`MqttLink(cfg, outbox_path, on_command)` is the one class the service uses; docs/mqtt.md
explains topics, delivery guarantees, sessions, commands and security.
"""

from appliance.outputs.mqtt.link import MqttLink

__all__ = ["MqttLink"]
