"""`--link PATH` never destroys what is at PATH: only a pty symlink (ours, or a stale one of ours)
is replaced, and only our own link is removed at exit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.errors import CommandError
from appliance.frontend.cyton.emulator import CytonEmulator


@pytest.mark.parametrize("make", ["file", "dir", "other-link"])
def test_cyton_link_refuses_what_it_did_not_make(tmp_path: Path, make: str) -> None:
    link = tmp_path / "ttyCYTON"
    if make == "file":
        link.write_text("a user's notes")
    elif make == "dir":
        link.mkdir()
    else:
        link.symlink_to(tmp_path / "elsewhere")
    before = os.lstat(link)
    with pytest.raises(CommandError, match="not a pty link this emulator made"):
        CytonEmulator(link=link, realtime=False)
    after = os.lstat(link)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    if make == "file":
        assert link.read_text() == "a user's notes"


def test_cyton_link_replaces_a_stale_pty_link_and_removes_only_its_own(tmp_path: Path) -> None:
    link = tmp_path / "ttyCYTON"
    link.symlink_to("/dev/pts/999")  # left by an emulator that was killed
    emu = CytonEmulator(link=link, realtime=False).start()
    try:
        assert os.readlink(link) == emu.path and emu.path.startswith("/dev/pts/")
    finally:
        emu.close()
    assert not os.path.lexists(link)  # our link: removed at exit
    emu = CytonEmulator(link=link, realtime=False).start()
    link.unlink()
    link.write_text("written while the emulator ran")  # someone else's file now
    emu.close()
    assert link.read_text() == "written while the emulator ran"
