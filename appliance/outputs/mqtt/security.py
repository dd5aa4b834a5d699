"""TLS and credentials for the client, checked before the first connect.

The config check (appliance/settings/mqtt.py) already refuses plaintext to a non-loopback broker;
here the files are opened, so a missing certificate or password file is a ConfigError naming
the key instead of a reconnect loop that never says why.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from appliance.errors import ConfigError
from appliance.settings.mqtt import MqttSettings


def _readable(key: str, path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"mqtt.{key}: got {path!r}, which is not a readable file.")
    try:
        p.read_bytes()
    except OSError as e:
        raise ConfigError(f"mqtt.{key}: cannot read {path!r} ({e.strerror}).") from e
    return str(p)


def ssl_context(s: MqttSettings) -> ssl.SSLContext | None:
    """Verifying TLS context (server certificate and host name), with the client certificate
    when configured; None when TLS is off."""
    if not s.tls:
        return None
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=_readable("ca_file", s.ca_file) if s.ca_file else None
        )
    except ssl.SSLError as e:
        raise ConfigError(f"mqtt.ca_file: {s.ca_file!r} is not a PEM CA bundle ({e}).") from e
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if s.cert_file:
        try:
            ctx.load_cert_chain(_readable("cert_file", s.cert_file),
                                _readable("key_file", s.key_file))
        except ssl.SSLError as e:
            raise ConfigError(
                f"mqtt.cert_file/mqtt.key_file: {s.cert_file!r} and {s.key_file!r} are not a "
                f"matching PEM certificate and key ({e})."
            ) from e
    return ctx


def password(s: MqttSettings) -> str | None:
    """The password from mqtt.password_file (first line, stripped), or None."""
    if not s.password_file:
        return None
    text = Path(_readable("password_file", s.password_file)).read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ConfigError(f"mqtt.password_file: {s.password_file!r} is empty.")
    return lines[0].strip()
