"""Read-only directories for tests: writes fail with EROFS through a read-only bind mount when
running as root (root ignores modes), with EACCES through mode 0555 otherwise; and a finished
case on read-only media (an archive): checkpointed, no -wal/-shm files, in such a folder."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from system_tools import skip_or_fail


@contextmanager
def read_only(d: Path) -> Iterator[Path]:
    """The existing directory d, read-only while the block runs."""
    if os.geteuid() == 0:
        r = subprocess.run(["mount", "--bind", "-o", "ro", str(d), str(d)], capture_output=True)
        if r.returncode != 0:
            skip_or_fail(f"cannot make a read-only bind mount here: {r.stderr.decode().strip()}")
    else:
        d.chmod(0o555)
    try:
        yield d
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(d)], check=False)
        else:
            d.chmod(0o755)


@contextmanager
def read_only_case(case_dir: Path, media: Path) -> Iterator[Path]:
    """A checkpointed copy of case_dir at media/case, read-only while the block runs."""
    shutil.copytree(case_dir, media / "case", ignore=shutil.ignore_patterns("export"))
    db = sqlite3.connect(media / "case" / "case.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for suffix in ("-wal", "-shm"):
        (media / "case" / f"case.sqlite{suffix}").unlink(missing_ok=True)
    with read_only(media / "case") as case:
        with pytest.raises(OSError):
            (case / "probe").write_bytes(b"")  # it is read-only
        yield case
