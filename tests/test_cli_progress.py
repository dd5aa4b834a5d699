"""Long work shows a progress line on stderr only when it is a terminal (a pseudo-terminal
here), and `ionm bench` prints a readable table unless --json."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from appliance.bench import format_table

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            b = os.read(fd, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks).decode(errors="replace")


def test_cli_progress_on_a_terminal_only(tmp_path: Path) -> None:
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "appliance.cli", "simulate", "--seconds", "2",
                          str(tmp_path / "a.bdf")], stdout=subprocess.PIPE, stderr=slave,
                         env=ENV)
    os.close(slave)
    seen = _read_all(master)
    os.close(master)
    assert p.wait(60) == 0
    assert f"\rsimulate {tmp_path / 'a.bdf'}: " in seen and " / 2.0 s (" in seen, seen
    assert seen.endswith("\r")  # the line is erased at the end
    r = subprocess.run([sys.executable, "-m", "appliance.cli", "simulate", "--seconds", "2",
                        str(tmp_path / "b.bdf")], capture_output=True, text=True, env=ENV,
                       timeout=60)
    assert r.returncode == 0 and r.stderr == ""  # a pipe: no progress


def test_cli_bench_table_is_readable() -> None:
    result = {"detection": [{"case": "fade", "lag_s": {"fast": 12.3456789, "conv": 40.0}}],
              "ratio": 0.000123456, "seeds": [1, 2, 3], "note": "x"}
    rows = [("detection[0].case", "fade"), ("detection[0].lag_s.fast", "12.35"),
            ("detection[0].lag_s.conv", "40"), ("ratio", "0.0001235"), ("seeds", "1, 2, 3"),
            ("note", "x")]
    assert format_table("detection", result).splitlines() == [
        "== detection", *(f"  {k:<23}  {v}" for k, v in rows)]


def test_cli_bench_prints_a_table_and_json_only_when_asked() -> None:
    def bench(*extra: str) -> str:
        r = subprocess.run([sys.executable, "-m", "appliance.cli", "bench", "decode", "--quick",
                            *extra], capture_output=True, text=True, env=ENV, timeout=300)
        assert r.returncode == 0, r.stderr
        return r.stdout

    as_json = json.loads(bench("--json"))
    table = bench().splitlines()
    assert table[0] == "== decode" and len(table) == 1 + len(as_json)
    assert sorted(line.split()[0] for line in table[1:]) == sorted(as_json)
    assert not any("{" in line for line in table)
