"""`ionm export CASE_DIR --format csv|json|edf [--out DIR]`: a case as open, vendor-neutral files.

json  case.json: case info (label, procedure, times, config snapshot), raw segments, saved state
      (baselines, latched alarms) and every event grouped by kind, in the shared JSON shapes.
csv   trends.csv (one row per trend and component), alarms.csv (alarm events: raised,
      acknowledged, ...), events.csv (every event, its JSON in a column), case.csv (key, value).
edf   the raw segments as BDF+ (the 24-bit member of the EDF+ family; 16-bit EDF+ would lose the
      ADC's resolution), each copied up to its last whole record — a segment cut short by a
      crash comes out with a consistent header — and checked readable before it is reported
      (header, size and first/last record: memory stays bounded for an 8-hour case).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

from appliance.errors import RecordingError
from appliance.frontend.bdf import COUNT_OFFSET, BdfReader
from appliance.outputs import casestore

TREND_COLUMNS = ["t_s", "t_utc", "site", "modality", "channel", "n_sweeps", "component",
                 "latency_ms", "amplitude_uv", "confidence", "peak_to_peak_uv",
                 "residual_noise_uv", "fsp", "snr_db", "split_half_r"]
ALARM_COLUMNS = ["t_s", "t_utc", "event", "alarm_id", "priority", "kind", "site", "message",
                 "latched", "cause"]


def _case(case_dir: Path) -> dict[str, Any]:
    info = casestore.case_info(case_dir)
    if info is None:
        raise RecordingError(
            f"{case_dir}: not a case folder (no readable {casestore.DB_NAME} in it)."
        )
    return info


def export_json(case_dir: Path, out: Path) -> list[Path]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for e in casestore.read_events(case_dir):
        grouped.setdefault(e["kind"], []).append(
            {"seq": e["seq"], "t_utc": e["t_utc"], "t_s": e["t_s"], **e["data"]})
    doc = {"case": _case(case_dir), "segments": casestore.read_segments(case_dir),
           "state": casestore.read_all_state(case_dir), "events": grouped}
    path = out / "case.json"
    path.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    return [path]


def _trend_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for e in events:
        d = e["data"]
        base = {k: d.get(k, "") for k in TREND_COLUMNS}
        base.update(t_s=e["t_s"], t_utc=e["t_utc"])
        comps = d.get("components") or {"": {}}
        for name, c in comps.items():
            rows.append({**base, "component": name, "latency_ms": c.get("latency_ms", ""),
                         "amplitude_uv": c.get("amplitude_uv", ""),
                         "confidence": c.get("confidence", "")})
    return rows


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def export_csv(case_dir: Path, out: Path) -> list[Path]:
    info = _case(case_dir)
    events = casestore.read_events(case_dir)
    alarms = [{**{k: e["data"].get(k, "") for k in ALARM_COLUMNS},
               "t_s": e["t_s"], "t_utc": e["t_utc"]}
              for e in events if e["kind"] == "alarm_event"]
    all_rows = [{**e, "json": json.dumps(e["data"], default=str)} for e in events]
    case_rows = [{"key": k, "value": json.dumps(v) if isinstance(v, dict) else v}
                 for k, v in info.items()]
    return [
        _write_csv(out / "case.csv", ["key", "value"], case_rows),
        _write_csv(out / "trends.csv", TREND_COLUMNS,
                   _trend_rows([e for e in events if e["kind"] == "trend"])),
        _write_csv(out / "alarms.csv", ALARM_COLUMNS, alarms),
        _write_csv(out / "events.csv", ["seq", "t_utc", "t_s", "kind", "site", "json"],
                   all_rows),
    ]


def export_edf(case_dir: Path, out: Path) -> list[Path]:
    info = _case(case_dir)
    written = []
    for seg in sorted(case_dir.glob("raw-*.bdf")):
        reader = BdfReader(seg, strict=False)  # a crash-cut segment: keep its whole records
        dest = out / f"{info['id']}-{seg.name}"
        n_bytes = reader.header_bytes + reader.n_records * reader.record_bytes
        with open(seg, "rb") as src, open(dest, "wb") as dst:
            left = n_bytes
            while left > 0:
                chunk = src.read(min(left, 1 << 20))
                if not chunk:
                    break
                dst.write(chunk)
                left -= len(chunk)
            dst.seek(COUNT_OFFSET)
            dst.write(str(reader.n_records).ljust(8).encode("ascii"))
        check = BdfReader(dest)  # strict: header count and size agree, signals parse
        if check.n_records:  # decode the first and last record (memory stays bounded)
            check.read_records(0, 1)
            check.read_records(check.n_records - 1, 1)
        written.append(dest)
    return written


EXPORTERS = {"csv": export_csv, "json": export_json, "edf": export_edf}


def export(case_dir: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str] | None = None
           ) -> list[Path]:
    """Export one case; returns the files written."""
    case = Path(case_dir)
    if fmt not in EXPORTERS:
        raise RecordingError(f"export format: got {fmt!r}, allowed: {', '.join(EXPORTERS)}.")
    _case(case)
    dest = Path(out) if out else case / "export"
    dest.mkdir(parents=True, exist_ok=True)
    return EXPORTERS[fmt](case, dest)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case_dir", help="a case folder (holds case.sqlite and raw-NNN.bdf)")
    ap.add_argument("--format", required=True, choices=sorted(EXPORTERS))
    ap.add_argument("--out", default=None, help="output folder (default: CASE_DIR/export)")
    args = ap.parse_args(argv)
    try:
        files = export(args.case_dir, args.format, args.out)
    except (RecordingError, OSError) as e:
        print(f"ionm export: {e}", file=sys.stderr)
        return 2
    for f in files:
        print(f)
    return 0
