"""Bad invocations of every kind end with one line naming the problem and the right exit code
(2: what the user gave is wrong; 1: a runtime failure), never a traceback; an existing output
is never replaced without --force; a closed stdout ends quietly."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from read_only_media import read_only

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
ENV.pop("NOTIFY_SOCKET", None)
CONFIG = '[frontend]\nkind = "simulated"\nrealtime = false\n'


def ionm(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True,
                          text=True, env=ENV, timeout=timeout)


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory writes fail in (EROFS as root, EACCES otherwise)."""
    d = tmp_path / "ro"
    d.mkdir()
    with read_only(d):
        yield d


# (id, argv with {tmp} / {cfg} / {existing} placeholders, exit code, phrase in stderr)
BAD = [
    ("run-seconds-nan", ["run", "--config", "{cfg}", "--seconds", "nan"], 2,
     "--seconds: got nan, allowed: a finite number of seconds > 0"),
    ("demo-seconds-inf", ["demo", "--seconds", "inf"], 2, "--seconds: got inf"),
    ("record-seconds-negative", ["record", "--frontend", "simulated", "--seconds", "-1",
                                 "{tmp}/x.bdf"], 2, "--seconds: got -1"),
    ("simulate-seconds-text", ["simulate", "--seconds", "ten", "{tmp}/x.bdf"], 2,
     "--seconds: got 'ten'"),
    ("simulate-to-a-directory", ["simulate", "--seconds", "1", "{tmp}"], 2, "is a directory"),
    ("simulate-existing", ["simulate", "--seconds", "1", "{existing}"], 2,
     "already exists; pass --force to replace it"),
    ("record-existing", ["record", "--frontend", "simulated", "--seconds", "1", "{existing}"], 2,
     "already exists; pass --force to replace it"),
    ("simulate-disk-full", ["simulate", "--seconds", "2", "--force", "/dev/full"], 1,
     "'/dev/full': No space left on device"),
    ("selftest-fault-id-300", ["selftest", "--emulated", "--fault", "id:300"], 2,
     "--fault: got 'id:300', allowed: id:0x00-0xFF"),
    ("selftest-fault-stuck-negative", ["selftest", "--emulated", "--fault", "stuck:-1"], 2,
     "--fault: got 'stuck:-1'"),
    ("emulate-link-over-a-file", ["emulate", "cyton", "--source", "test", "--link", "{existing}"],
     2, "not a pty link this emulator made"),
    ("simulate-seed-negative", ["simulate", "--seconds", "1", "--seed", "-5", "{tmp}/x.bdf"], 2,
     "--seed: got -5, allowed: a whole number >= 0"),
    ("record-cyton-absent", ["record", "--frontend", "cyton", "--port", "{tmp}/ttyNONE",
                             "--seconds", "1", "{tmp}/x.bdf"], 1,
     "ttyNONE': cannot open it (No such file or directory)"),
    ("emulate-replay-missing", ["emulate", "cyton", "--replay", "{tmp}/none.txt"], 2,
     "none.txt': no such file"),
    ("export-not-a-case", ["export", "{tmp}", "--format", "csv"], 2, "not a case folder"),
    ("report-not-a-case", ["report", "{tmp}"], 2, "not a case folder (no case.sqlite in it)"),
    ("check-config-missing", ["check-config", "{tmp}/none.toml"], 2, "cannot read it"),
    ("unknown-command", ["frobnicate"], 2, "unknown command 'frobnicate'"),
    # found in the acceptance review (docs/acceptance-issue13.md)
    ("selftest-fault-gain-nan", ["selftest", "--emulated", "--fault", "gain:1:nan"], 2,
     "--fault: got 'gain:1:nan'"),
    ("simulate-seed-over-32-bit", ["simulate", "--seconds", "1", "--seed", "4294967296",
                                   "{tmp}/x.bdf"], 2, "--seed: got 4294967296, allowed"),
    ("lights-check-step-nan", ["lights-check", "--backend", "none", "--step-s", "nan"], 2,
     "--step-s: got nan"),
    ("lights-check-bad-config", ["lights-check", "--config", "{cfg}", "--backend", "gpiozero"], 2,
     "ionm lights-check: config error: lights.backend: got 'gpiozero'"),
]


@pytest.mark.parametrize(("argv", "code", "phrase"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_cli_bad_invocation(tmp_path: Path, argv: list[str], code: int, phrase: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    existing = tmp_path / "keep.bdf"
    existing.write_bytes(b"a recording someone needs")
    args = [a.format(tmp=tmp_path, cfg=cfg, existing=existing) for a in argv]
    r = ionm(*args)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == code, (r.returncode, r.stderr)
    assert phrase in r.stderr, r.stderr
    assert existing.read_bytes() == b"a recording someone needs"  # never replaced


def test_cli_read_only_outputs_are_one_line(tmp_path: Path, read_only_dir: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    why = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    r = ionm("simulate", "--seconds", "1", str(read_only_dir / "x.bdf"))
    assert (r.returncode, "Traceback" in r.stderr) == (1, False), r.stderr
    assert r.stderr.strip() == f"ionm simulate: '{read_only_dir / 'x.bdf'}': {why}"
    r = ionm("run", "--config", str(cfg), "--state-dir", str(read_only_dir / "state"),
             "--seconds", "1")
    assert (r.returncode, "Traceback" in r.stderr) == (1, False), r.stderr
    assert f"start-up failed: '{read_only_dir / 'state'}': {why}" in r.stderr


def test_cli_names_a_missing_recording_once(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    missing = str(tmp_path / "nope.bdf")
    r = ionm("replay", missing, "--config", str(cfg))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.count("nope.bdf") == 1, r.stderr


def test_cli_force_replaces_an_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "x.bdf"
    out.write_bytes(b"old")
    r = ionm("simulate", "--seconds", "1", "--force", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\xffBIOSEMI"  # a BDF header now


@pytest.mark.parametrize("argv", [["-h"], ["bench", "--help"], ["simulate", "--help"]])
def test_cli_closed_stdout_exits_quietly(argv: list[str]) -> None:
    """`ionm -h | head -3`: the reader is gone before we write."""
    r, w = os.pipe()
    os.close(r)
    with contextlib.closing(os.fdopen(w, "wb")) as out:
        p = subprocess.run([sys.executable, "-m", "appliance.cli", *argv], stdout=out,
                           stderr=subprocess.PIPE, text=True, env=ENV, timeout=60)
    assert p.stderr == ""
    assert p.returncode in (0, 1)
