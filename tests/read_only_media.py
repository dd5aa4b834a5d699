"""A finished case on read-only media (an archive): checkpointed, no -wal/-shm files, in a
folder nobody can write (a read-only bind mount when running as root, which ignores modes)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only_case(case_dir: Path, media: Path) -> Iterator[Path]:
    """A checkpointed copy of case_dir at media/case, read-only while the block runs."""
    shutil.copytree(case_dir, media / "case", ignore=shutil.ignore_patterns("export"))
    db = sqlite3.connect(media / "case" / "case.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for suffix in ("-wal", "-shm"):
        (media / "case" / f"case.sqlite{suffix}").unlink(missing_ok=True)
    if os.geteuid() == 0:
        r = subprocess.run(["mount", "--bind", "-o", "ro", str(media), str(media)],
                           capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot make a read-only bind mount here: {r.stderr.decode().strip()}")
    else:
        (media / "case").chmod(0o555)
    try:
        with pytest.raises(OSError):
            (media / "case" / "probe").write_bytes(b"")  # it is read-only
        yield media / "case"
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(media)], check=False)
        else:
            (media / "case").chmod(0o755)
