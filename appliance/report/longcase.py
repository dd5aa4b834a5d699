"""A long case store for timing `ionm report`: a recorded case's events repeated end to end
until the case lasts `--hours` (trends, averages, baselines, alarms and annotations at the
recorded density; no raw BDF+, which the report does not read).

    python -m appliance.report.longcase CASE_DIR --hours 1 OUT_DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.outputs import casestore


def tile(case_dir: Path, hours: float, out: Path) -> tuple[int, float]:
    """Write OUT/case.sqlite; (events written, case seconds)."""
    src = casestore.connect_read_only(case_dir / casestore.DB_NAME)
    case_row = src.execute('SELECT * FROM "case"').fetchone()
    rows = src.execute("SELECT t_utc, t_s, kind, site, json FROM events WHERE kind NOT IN "
                       "('case', 'segment') ORDER BY seq").fetchall()
    state = src.execute("SELECT * FROM state").fetchall()
    src.close()
    span_s = max((r[1] for r in rows if r[1] is not None), default=0.0) + 1.0
    if span_s <= 1.0:
        raise SystemExit(f"{case_dir}: no timed events to repeat")
    out.mkdir(parents=True, exist_ok=False)
    db = casestore.connect(out, fsync=False)
    db.execute('INSERT INTO "case" VALUES (?, ?, ?, ?, ?, ?, ?)', case_row)
    db.execute("INSERT INTO events (t_utc, t_s, kind, site, json) VALUES "
               "(?, 0.0, 'segment', '', '{\"t_s\": 0.0, \"file\": \"raw-001.bdf\", "
               "\"reason\": \"start\"}')", (case_row[3],))
    n, k = 0, 0
    while k * span_s < hours * 3600.0:
        shift = k * span_s
        db.executemany("INSERT INTO events (t_utc, t_s, kind, site, json) VALUES (?, ?, ?, ?, ?)",
                       [(u, None if t is None else t + shift, kind, site,
                         _shift_json(j, shift)) for u, t, kind, site, j in rows])
        n += len(rows)
        k += 1
    db.executemany("INSERT INTO state VALUES (?, ?, ?)", state)
    db.commit()
    db.close()
    return n, k * span_s


def _shift_json(text: str, shift: float) -> str:
    """The event's own "t_s" moved by `shift` (the column is what the report reads first)."""
    import json

    try:
        d = json.loads(text)
    except ValueError:
        return text
    if isinstance(d, dict) and isinstance(d.get("t_s"), int | float):
        d["t_s"] = d["t_s"] + shift
    return json.dumps(d)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m appliance.report.longcase",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("case_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args(argv)
    out = Path(args.out_dir)  # must not exist: nothing is ever overwritten
    n, span = tile(Path(args.case_dir), args.hours, out)
    print(f"{out}: {n} events over {span / 3600:.2f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
