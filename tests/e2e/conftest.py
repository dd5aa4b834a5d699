"""End-to-end fixtures: a NOTIFY_SOCKET listener (a bound Unix datagram socket, as systemd
has) and an MQTT subscriber on the real broker (tests/conftest.py `broker`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import NotifyListener, Subscriber


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    n = NotifyListener(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(n.path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # WATCHDOG=1 every 0.5 s while healthy
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield n
    n.close()


@pytest.fixture
def subscriber(broker: Any) -> Iterator[Subscriber]:
    s = Subscriber(broker.host, broker.port)
    yield s
    s.close()
