"""The documentation names repository paths, never a development machine's absolute ones."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# a checkout, a home or root's folder, a pytest temp dir of one machine
MACHINE_PATH = re.compile(r"(?<![\w.])/(work|home/\w+|root|Users/\w+)/|/tmp/pytest-of-")


def test_docs_carry_no_development_machine_paths() -> None:
    files = [REPO / "README.md", *REPO.glob("docs/**/*.md"), *REPO.glob("hw/**/*.md"),
             *REPO.glob("deploy/**/*.md"), *REPO.glob("tests/data/*.md")]
    assert len(files) > 5
    hits = [f"{f.relative_to(REPO)}:{n}: {line.strip()}" for f in files
            for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
            if MACHINE_PATH.search(line)]
    assert hits == [], "\n".join(hits)
