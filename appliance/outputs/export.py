"""`ionm export CASE_DIR --format csv|json|edf [--out DIR]`: a case as open, vendor-neutral files.

json  case.json: case info (label, procedure, times, config snapshot), raw segments, saved state
      (baselines, latched alarms) and every event grouped by kind, in the shared JSON shapes.
csv   trends.csv (one row per trend and component), alarms.csv (alarm events: raised,
      acknowledged, ...), events.csv (every event, its JSON in a column), case.csv (key, value).
edf   the raw segments as BDF+ (the 24-bit member of the EDF+ family; 16-bit EDF+ would lose the
      ADC's resolution), each copied up to its last whole record — a segment cut short by a
      crash comes out with a consistent header — and checked readable before it is reported
      (header, size and first/last record: memory stays bounded for an 8-hour case).

Everything readable is exported; what is not (a row of case.sqlite that does not parse, a raw
segment that is missing, raw data ending before the case's last event) is named on stderr and
the exit code is 1, so a script never takes a partial export for a whole one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path
from typing import Any

from appliance.cli import describe_os_error, refuse_existing, report_problems
from appliance.errors import RecordingError
from appliance.frontend.bdf import COUNT_OFFSET, BdfReader
from appliance.outputs import casestore

TREND_COLUMNS = ["t_s", "t_utc", "site", "modality", "channel", "n_sweeps", "component",
                 "latency_ms", "amplitude_uv", "confidence", "peak_to_peak_uv",
                 "residual_noise_uv", "fsp", "snr_db", "split_half_r"]
ALARM_COLUMNS = ["t_s", "t_utc", "event", "alarm_id", "priority", "kind", "site", "message",
                 "latched", "cause"]
RAW_SHORT_TOLERANCE_S = 2.0  # the last, partial 1-s record is dropped: allow for it


def _case(case_dir: Path) -> dict[str, Any]:
    info = casestore.case_info(case_dir)
    if info is None:
        raise RecordingError(
            f"{case_dir}: not a case folder (no readable {casestore.DB_NAME} in it)."
        )
    return info


def export_json(case_dir: Path, out: Path, problems: list[str]) -> list[Path]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for e in casestore.read_events(case_dir, skipped=problems):
        grouped.setdefault(e["kind"], []).append(
            {"seq": e["seq"], "t_utc": e["t_utc"], "t_s": e["t_s"], **e["data"]})
    doc = {"case": _case(case_dir), "segments": casestore.read_segments(case_dir),
           "state": casestore.read_all_state(case_dir, problems), "events": grouped}
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


def export_csv(case_dir: Path, out: Path, problems: list[str]) -> list[Path]:
    info = _case(case_dir)
    events = casestore.read_events(case_dir, skipped=problems)
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


def _raw_coverage(case_dir: Path, problems: list[str]) -> None:
    """Name raw segments the case lists but the folder lacks, and raw data that ends well
    before the case's last event (a truncated or lost segment)."""
    events = casestore.read_events(case_dir)
    listed = [e["data"] for e in events if e["kind"] == "segment"]
    raw_end_s = 0.0
    for seg in listed:
        path = case_dir / str(seg.get("file", ""))
        if not path.is_file():
            problems.append(f"raw segment {seg.get('file')!r} (from {seg.get('t_s', 0):.1f} s) "
                            "is listed in the case but missing")
            continue
        try:
            r = BdfReader(path, strict=False)
        except (RecordingError, OSError):
            continue  # named when it is exported
        raw_end_s = max(raw_end_s, float(seg.get("t_s", 0.0)) + r.n_records * r.record_duration_s)
    case_end_s = max((float(e["t_s"]) for e in events if e["t_s"] is not None), default=0.0)
    if not listed and case_end_s > 0:
        problems.append(f"the case has events up to {case_end_s:.1f} s but no raw data")
    elif case_end_s - raw_end_s > RAW_SHORT_TOLERANCE_S:
        problems.append(f"raw data ends at {raw_end_s:.1f} s of the case's {case_end_s:.1f} s "
                        "(truncated or missing segment, or raw recording paused)")


def export_edf(case_dir: Path, out: Path, problems: list[str]) -> list[Path]:
    info = _case(case_dir)
    _raw_coverage(case_dir, problems)
    written = []
    for seg in sorted(case_dir.glob("raw-*.bdf")):
        try:
            reader = BdfReader(seg, strict=False)  # a crash-cut segment: keep its whole records
        except (RecordingError, OSError) as e:
            why = describe_os_error(e) if isinstance(e, OSError) else str(e)
            problems.append(f"raw segment {seg.name}: not exported ({why})")
            continue
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


def _output_names(case_dir: Path, fmt: str) -> list[str]:
    """The file names an export of `fmt` writes (checked before anything is written)."""
    if fmt == "json":
        return ["case.json"]
    if fmt == "csv":
        return ["case.csv", "trends.csv", "alarms.csv", "events.csv"]
    case_id = _case(case_dir)["id"]
    return [f"{case_id}-{seg.name}" for seg in sorted(case_dir.glob("raw-*.bdf"))]


def export(case_dir: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str] | None = None,
           problems: list[str] | None = None, force: bool = False) -> list[Path]:
    """Export one case; returns the files written. What could not be exported is appended to
    `problems` (one line each). An existing output file is refused unless `force`."""
    case = Path(case_dir)
    if fmt not in EXPORTERS:
        raise RecordingError(f"export format: got {fmt!r}, allowed: {', '.join(EXPORTERS)}.")
    _case(case)
    dest = Path(out) if out else case / "export"
    for name in _output_names(case, fmt):
        refuse_existing(dest / name, force)
    dest.mkdir(parents=True, exist_ok=True)
    return EXPORTERS[fmt](case, dest, [] if problems is None else problems)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case_dir", help="a case folder (holds case.sqlite and raw-NNN.bdf)")
    ap.add_argument("--format", required=True, choices=sorted(EXPORTERS))
    ap.add_argument("--out", default=None, help="output folder (default: CASE_DIR/export)")
    ap.add_argument("--force", action="store_true", help="replace existing output files")
    args = ap.parse_args(argv)
    problems: list[str] = []
    # errors end in appliance.cli
    files = export(args.case_dir, args.format, args.out, problems, force=args.force)
    for f in files:
        print(f)
    return report_problems("ionm export", problems, "the export is incomplete")
