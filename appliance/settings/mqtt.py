"""The `[mqtt]` section: broker, security, session, outbox and command authorisation.

Secrets never live in the config: `password_file` names a file that holds the password.
Plaintext to a broker that is not on loopback is refused unless `allow_plaintext_remote` says so.
"""

import ipaddress
from dataclasses import dataclass

from appliance.errors import ConfigError
from appliance.validate import field


def is_loopback(host: str) -> bool:
    """True for 'localhost' and loopback IP literals; other names are not resolved (no DNS)."""
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class MqttSettings:
    enabled: bool = field(True, help="publish to an MQTT broker")
    host: str = field("127.0.0.1", help="broker host")
    port: int = field(1883, min=1, max=65535, help="broker port (TLS: usually 8883)")
    client_id: str = field("", help="MQTT client id; '' = 'ionm-<device.id>'")
    topic_root: str = field("ionm/v1", help="topic prefix before the device id")
    keepalive_s: int = field(
        10, min=1, max=60,
        help="MQTT keepalive; the broker declares the device dead after 1.5 x this (use 5-10)",
    )
    connect_timeout_s: float = field(3.0, min=0.5, max=30.0, help="TCP + TLS handshake timeout")
    reconnect_min_s: float = field(0.5, min=0.1, max=60.0, help="first reconnect delay")
    reconnect_max_s: float = field(
        10.0, min=0.5, max=300.0, help="reconnect delay cap (doubles from min, +-25 % jitter)"
    )
    # security
    tls: bool = field(False, help="connect with TLS (server certificate verified)")
    ca_file: str = field("", help="CA bundle that signed the broker certificate; '' = system CAs")
    cert_file: str = field("", help="client certificate (PEM) for mutual TLS")
    key_file: str = field("", help="client private key (PEM) for mutual TLS")
    username: str = field("", help="MQTT username ('' = none; with mutual TLS often unused)")
    password_file: str = field("", help="file holding the MQTT password (never inline)")
    allow_plaintext_remote: bool = field(
        False, help="permit a non-TLS connection to a non-loopback broker (not recommended)"
    )
    # outbox and delivery
    outbox_max_rows: int = field(
        200_000, min=100, max=10_000_000, help="outbox bound; beyond it the oldest rows of the "
        "lowest class (waveform, then trend) are dropped and counted",
    )
    replay_rate_per_s: float = field(
        200.0, min=1.0, max=100_000.0, help="rate at which a backlog is replayed after an outage"
    )
    inflight_window: int = field(
        20, min=1, max=1000, help="unacknowledged outbox messages at once (capped by the broker)"
    )
    alarm_fsync: str = field(
        "after_publish", choices=("after_publish", "before_publish"),
        help="alarm rows are always committed before their publish (kill -9 safe); "
        "'after_publish' syncs them to storage right after handing them to the socket, "
        "'before_publish' first (power-loss safe even without a PUBACK, adds an fsync to "
        "alarm latency)",
    )
    alarm_expiry_s: int = field(
        300, min=5, max=86_400, help="MQTT 5 message expiry of alarm events (stale: not sent)"
    )
    trend_expiry_s: int = field(86_400, min=10, max=7 * 86_400, help="how long trends wait")
    waveform_expiry_s: int = field(600, min=10, max=86_400, help="how long waveforms wait")
    health_interval_s: float = field(
        5.0, min=0.5, max=60.0, help="the link publishes its own health at least this often"
    )
    # commands
    commands_enabled: bool = field(
        True, help="accept commands on <root>/<device>/cmd/<client>/<name>"
    )
    command_clients: tuple[str, ...] = field(
        (), help="allow-list of client names (the <client> topic level, bound to the username "
        "by the broker ACL); empty = every client the broker lets write the command topics",
    )
    command_timeout_s: float = field(2.0, min=0.1, max=30.0, help="on_command time limit")

    def check(self, path: str) -> None:
        p = path or "mqtt"
        if not self.tls and not self.allow_plaintext_remote and not is_loopback(self.host):
            raise ConfigError(
                f"{p}.host: got {self.host!r} without {p}.tls = true; plaintext MQTT to a "
                f"non-loopback broker is refused. Set {p}.tls = true (with {p}.ca_file), or "
                f"{p}.allow_plaintext_remote = true if the network is otherwise protected."
            )
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError(
                f"{p}.cert_file/{p}.key_file: got {self.cert_file!r}/{self.key_file!r}; "
                "give both (mutual TLS) or neither."
            )
        if (self.cert_file or self.ca_file) and not self.tls:
            raise ConfigError(
                f"{p}.tls: got false while {p}.ca_file/{p}.cert_file are set; set {p}.tls = true."
            )
        if self.password_file and not self.username:
            raise ConfigError(f"{p}.username: missing; {p}.password_file needs a username.")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ConfigError(
                f"{p}.reconnect_max_s: got {self.reconnect_max_s}, allowed: at least "
                f"{p}.reconnect_min_s ({self.reconnect_min_s})."
            )
        root = self.topic_root
        bad = any(c in root for c in "+#\0") or root.startswith(("/", "$")) or root.endswith("/")
        if not root or bad:
            raise ConfigError(
                f"{p}.topic_root: got {root!r}, allowed: topic levels without '+', '#', a "
                "leading '/' or '$', or a trailing '/', e.g. 'ionm/v1'."
            )
        for i, name in enumerate(self.command_clients):
            if not name or any(c in name for c in "+#/\0"):
                raise ConfigError(
                    f"{p}.command_clients[{i}]: got {name!r}, allowed: a non-empty name "
                    "without '+', '#' or '/' (it is a topic level)."
                )
