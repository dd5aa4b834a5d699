"""`ionm report CASE_DIR [--out FILE] [--html] [--force]`.

Reads the case read-only (a case still being recorded is reported up to its last committed
event; the recorder is never blocked), draws with matplotlib (Agg) and writes the file
atomically (a temporary file renamed into place), so a failed run never leaves half a report.
Bad input (not a case folder, a store that is not SQLite or is truncated) is one line, exit 2;
unreadable rows are left out, named on stderr and in the report, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

from appliance.cli import naming, plural, refuse_existing, report_problems


def report(case_dir: str | os.PathLike[str], out: str | os.PathLike[str], html: bool = False,
           force: bool = False) -> tuple[Path, int, list[str]]:
    """Write the report; (path, pages or figures, problems)."""
    from appliance.report import casedata

    dest = Path(out)
    refuse_existing(dest, force)
    case = casedata.load(case_dir)
    from appliance.report import layout  # matplotlib: only once the case reads

    made = dt.datetime.now(dt.UTC)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")  # the umask's mode, as any output
    try:
        with naming(dest):
            write = layout.write_html if html else layout.write_pdf
            n = write(case, Path(tmp), made)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest, n, case.problems


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="ionm report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case_dir", help="a case folder (holds case.sqlite and raw-NNN.bdf)")
    ap.add_argument("--out", default=None,
                    help="output file (default: CASE_DIR/report.pdf, or report.html with --html)")
    ap.add_argument("--html", action="store_true",
                    help="one self-contained HTML file (images embedded) instead of a PDF")
    ap.add_argument("--force", action="store_true", help="replace an existing output file")
    args = ap.parse_args(argv)
    out = args.out or str(Path(args.case_dir) / ("report.html" if args.html else "report.pdf"))
    t0 = time.monotonic()
    # errors end in appliance.cli.run_command (exit 2 for a bad case, 1 for a disk error)
    path, n, problems = report(args.case_dir, out, html=args.html, force=args.force)
    what = plural(n, "figure") if args.html else plural(n, "page")
    print(f"{path} ({what}, {time.monotonic() - t0:.1f} s)")
    return report_problems("ionm report", problems, "the report says what is missing")
