"""System tools some tests need (mosquitto, openssl, shellcheck, systemd-analyze). A uniquely
named module beside the root conftest (tests/ is on sys.path), importable from every test."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def need_tool(name: str, package: str) -> str:
    """The path of a system tool a test needs. Absent: skip, saying which Debian package adds it
    (a fresh machine's `make test` has only python3); under .ci/run (IONM_CI=1, which installs
    every one) fail instead, so CI never passes by skipping."""
    for cand in (shutil.which(name), f"/usr/sbin/{name}"):
        if cand and os.access(cand, os.X_OK):
            return cand
    skip_or_fail(f"{name} is not installed (Debian package {package!r}; .ci/run installs it)")


def skip_or_fail(why: str) -> NoReturn:
    """Skip a test whose tool or package is missing; fail instead under .ci/run (IONM_CI=1),
    which installs every one, so CI never passes by skipping."""
    if os.environ.get("IONM_CI"):
        pytest.fail(why)
    pytest.skip(why)
