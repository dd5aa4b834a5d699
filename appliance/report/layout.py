"""The report as a sequence of parts, written as a PDF (matplotlib's PdfPages: text pages and
figure pages, A4) or as one self-contained HTML file (tables, figures as embedded PNG)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import itertools
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.report import content, figures
from appliance.report.casedata import CaseData

MOMENTS_MAX = 60  # stacked-trace pages; the rest are in the timeline
LINES_PER_PAGE = 82
COLUMNS = 132  # monospace characters across an A4 page at 6.5 pt
COLUMN_MAX = 34  # a wider cell wraps within its column
SIGNATURE = ["Reviewed by (name): ________________________________________",
             "Date: ____________________      Signature: ______________________________"]


@dataclass
class Table:
    title: str
    rows: list[list[str]]  # the first row is the header


@dataclass
class Plot:
    title: str
    figure: Any  # matplotlib Figure


def parts(case: CaseData, made_utc: dt.datetime) -> Iterator[Table | Plot]:
    """Everything the report shows, in order. Figures are made one at a time (a long case
    never holds all its pages in memory)."""
    plans, why = content.site_plans(case)
    head = [["", ""]] + [list(r) for r in content.header_rows(case, made_utc)]
    if case.problems:
        head += [["unreadable", p] for p in case.problems]
    if why:
        head.append(["montage", why])
    yield Table("IONM case report", head)
    yield Table("Settings", [["", ""]] + [list(r) for r in content.settings_rows(case)])
    yield Table("Montage and criteria", content.montage_rows(case, plans))
    idx = figures.Index(case)
    if (fig := figures.baseline_figure(case, idx, plans)) is not None:
        yield Plot("Baselines", fig)
    chosen, left_out = content.moments(case, {p.name for p in plans}, MOMENTS_MAX)
    for m in chosen:
        yield Plot(f"{content.duration(m.case_s)} {content.describe(m)}",
                   figures.moment_figure(case, idx, plans, m))
    for p in plans:
        if (fig := figures.trend_figure(case, idx, p)) is not None:
            yield Plot(f"Trends — {p.name}", fig)
    if (fig := figures.continuous_figure(case)) is not None:
        yield Plot("EEG and EMG trends", fig)
    timeline = content.timeline_rows(case)
    if left_out:
        timeline.append(["", "", "", "", f"{left_out} more alarms/events without trace pages "
                         f"(the first {MOMENTS_MAX} have them)", "", ""])
    yield Table("Alarm and event timeline", timeline)
    yield Table("Acknowledgements and audio pauses", content.acknowledgement_rows(case))


# ---------------------------------------------------------------------------- PDF


def _text_lines(t: Table) -> list[tuple[str, str]]:
    """(style, text) lines of a table in monospace columns; a cell longer than its column
    (at most COLUMN_MAX wide, the last takes the rest) wraps onto continuation lines, never cut."""
    rows = [r for r in t.rows if any(r)]
    out = [("title", t.title)]
    if not rows:
        return out
    n = len(rows[0])
    widths = [min(max(len(r[i]) for r in rows), COLUMN_MAX) for i in range(n - 1)]
    widths.append(max(20, COLUMNS - sum(w + 2 for w in widths)))
    for k, r in enumerate(rows):
        cells = [textwrap.wrap(c, w, break_on_hyphens=False) or [""]
                 for c, w in zip(r, widths, strict=True)]
        style = "head" if k == 0 and any(t.rows[0]) else "mono"
        for j, parts in enumerate(itertools.zip_longest(*cells, fillvalue="")):
            line = "  ".join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()
            out.append((style if j == 0 else "mono", line))
    out.append(("mono", ""))
    return out


def _text_pages(lines: list[tuple[str, str]]) -> Iterator[Any]:
    import matplotlib.pyplot as plt

    for start in range(0, len(lines), LINES_PER_PAGE):
        fig = plt.figure(figsize=figures.A4_IN)
        y = 0.965
        for style, text in lines[start:start + LINES_PER_PAGE]:
            if style == "title":
                fig.text(0.05, y, text, fontsize=11, weight="bold", va="top")
            else:
                fig.text(0.05, y, text, fontsize=6.5, family="monospace", va="top",
                         weight="bold" if style == "head" else "normal")
            y -= 0.0113 if style != "title" else 0.02
        yield fig


def write_pdf(case: CaseData, out: Path, made_utc: dt.datetime) -> int:
    """The PDF; returns its page count."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    pages = 0
    pending: list[tuple[str, str]] = []

    def flush(pdf: Any) -> int:
        n = 0
        for fig in _text_pages(pending):
            pdf.savefig(fig)
            plt.close(fig)
            n += 1
        pending.clear()
        return n

    with PdfPages(out, metadata={"Title": f"IONM case report {case.info.get('id', '')}",
                                 "Creator": "ionm report"}) as pdf:
        for part in parts(case, made_utc):
            if isinstance(part, Table):
                pending.extend(_text_lines(part))
                continue
            pages += flush(pdf)
            pdf.savefig(part.figure)
            plt.close(part.figure)
            pages += 1
        pending.extend([("title", "Signature"), ("mono", ""), ("mono", SIGNATURE[0]),
                        ("mono", ""), ("mono", SIGNATURE[1])])
        pages += flush(pdf)
    return pages


# ---------------------------------------------------------------------------- HTML

_CSS = """body{font-family:sans-serif;max-width:60em;margin:1em auto;color:#111}
table{border-collapse:collapse;font-size:0.85em;margin-bottom:1.5em}
td,th{border:1px solid #bbb;padding:2px 6px;text-align:left;vertical-align:top}
img{width:100%;border:1px solid #ddd}.sign{margin-top:3em;line-height:3em}"""


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def write_html(case: CaseData, out: Path, made_utc: dt.datetime) -> int:
    """One HTML file with its images embedded; returns the number of figures."""
    import matplotlib.pyplot as plt

    e = html.escape
    doc = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>IONM case report {e(str(case.info.get('id', '')))}</title>",
           f"<style>{_CSS}</style></head><body>"]
    n_fig = 0
    for part in parts(case, made_utc):
        doc.append(f"<h2>{e(part.title)}</h2>")
        if isinstance(part, Plot):
            doc.append(f'<figure><img alt="{e(part.title)}" '
                       f'src="data:image/png;base64,{_png(part.figure)}"></figure>')
            plt.close(part.figure)
            n_fig += 1
            continue
        rows = part.rows
        head = rows[0] if rows and any(rows[0]) else None
        doc.append("<table>")
        if head:
            doc.append("<tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr>")
        for r in rows[1:]:
            doc.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
        doc.append("</table>")
    doc.append('<h2>Signature</h2><div class="sign">' +
               "<br>".join(e(s) for s in SIGNATURE) + "</div></body></html>")
    out.write_text("\n".join(doc), encoding="utf-8")
    return n_fig
