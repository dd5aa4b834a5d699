"""Fixtures for the MQTT tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mosquitto_dir() -> Path:
    # pytest's tmp_path sits under a 0700 directory; mosquitto drops to its own user and must
    # reach its config, certificates, password file and persistence file.
    d = Path(tempfile.mkdtemp(prefix="ionm-mqtt-"))
    d.chmod(0o777)
    return d


@pytest.fixture
def mosq_dir() -> Iterator[Path]:
    d = _mosquitto_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def mosq_module_dir() -> Iterator[Path]:
    d = _mosquitto_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)
