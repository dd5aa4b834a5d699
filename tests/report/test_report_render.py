"""`ionm report` on a real resumed case (tests/report/report_helpers.py): the PDF's pages rendered
with pdftoppm and checked for drawn plots (pixels of the traces', baseline's and alarm's colours
in each plot area), its text read with pdftotext; the HTML variant parsed, its images decoded,
an existing output refused without --force."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_helpers import ALARM_ID, bluish, cells, dark, pdf_pages, reddish

from appliance import __version__
from appliance.cli import main as ionm
from appliance.outputs import casestore


@pytest.fixture(scope="module")
def pdf(case_dir: Path, tmp_path_factory: pytest.TempPathFactory
        ) -> tuple[list[np.ndarray], list[str]]:
    out = tmp_path_factory.mktemp("pdf")
    assert ionm(["report", str(case_dir), "--out", str(out / "r.pdf")]) == 0
    return pdf_pages(out / "r.pdf", out)


def page_with(text: list[str], phrase: str) -> int:
    hits = [i for i, t in enumerate(text) if phrase in t]
    assert hits, f"no page says {phrase!r}"
    return hits[0]


def test_report_pdf_pages_are_the_case(case_dir: Path, pdf) -> None:
    pages, text = pdf
    events = casestore.read_events(case_dir)
    notes = [e["data"]["text"] for e in events if e["kind"] == "annotation"]
    assert notes == ["screw L4 left", "rod placed", "closure"]
    raised = [e for e in events if e["kind"] == "alarm_event" and e["data"]["event"] == "raised"
              and e["data"]["kind"] == "physiological" and e["data"]["cause"] != "restore"]
    assert [e["data"]["alarm_id"] for e in raised] == [ALARM_ID]
    # header + settings (1 text page), baselines, one page per alarm and event, a trend page
    # per site, the timeline with acknowledgements and signature (1 text page)
    assert len(pages) == 1 + 1 + len(raised) + len(notes) + 2 + 1, [t[:60] for t in text]
    head = text[0]
    assert "NOT a certified medical device" in head
    assert case_dir.name in head and "report-dev, OR 3 cart, OR 3" in head
    assert "2 (raw-001.bdf, raw-002.bdf); resumed 1x after a restart" in head
    assert f"recorded by    ionm {__version__}" in head
    assert "amplitude < 50% or latency > 110% of baseline" in head
    timeline = text[-1]
    for phrase in ("Alarm and event timeline", "raised", "acknowledged", "local console",
                   "case resumed", "case stopped", "screw L4 left", "closure", "Signature",
                   "Reviewed by (name)"):
        assert phrase in timeline, phrase
    assert ALARM_ID in timeline
    ack = timeline.split("Acknowledgements and audio pauses")[1]
    assert "acknowledged" in ack and ALARM_ID in ack


def test_report_pdf_plots_are_drawn(pdf) -> None:
    pages, text = pdf
    # baselines: 3 channels x 2 sites, each plot area holds a baseline trace
    base = pages[page_with(text, "Baselines")]
    for i, cell in enumerate(cells(base, 3, 2)):
        assert bluish(cell).sum() > 200, f"baseline plot {i} is empty"
    # the alarm: its site's 3 channels stacked, the average at the alarm in red, the baseline
    # overlaid in blue on every trace, the other averages in black
    alarm = pages[page_with(text, f"alarm high: {ALARM_ID}")]
    for i, cell in enumerate(cells(alarm, 3, 1, top=0.08)):
        assert reddish(cell).sum() > 80, f"channel {i}: no trace at the alarm"
        assert bluish(cell).sum() > 80, f"channel {i}: no baseline overlay"
        assert dark(cell).sum() > 500, f"channel {i}: no stacked averages"
    # an event: every site (2 columns), every channel
    event = pages[page_with(text, "event: rod placed")]
    for i, cell in enumerate(cells(event, 3, 2, top=0.08)):
        assert dark(cell).sum() > 300, f"event plot {i} is empty"
    # trends: amplitude over latency, the first channel's line in both, the alarm marked
    trend = pages[page_with(text, "Trends — L median")]
    amp, lat = cells(trend, 2, 1)
    assert bluish(amp).sum() > 60 and bluish(lat).sum() > 60, "a trend is not drawn"
    assert reddish(amp).sum() > 20, "the alarm is not marked"
    # a white page would pass nothing above; a text page is mostly white
    assert (pages[0] < 200).mean() < 0.2


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.headings: list[str] = []
        self.cells: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_data(self, data: str) -> None:
        if self._tag == "h2":
            self.headings.append(data)
        elif self._tag == "td":
            self.cells.append(data)


def test_report_html_is_self_contained_with_its_images_and_needs_force(
        case_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    out.write_text("the user's own file")
    assert ionm(["report", str(case_dir), "--html", "--out", str(out)]) == 2
    assert "already exists; pass --force to replace it" in capsys.readouterr().err
    assert out.read_text() == "the user's own file"
    assert ionm(["report", str(case_dir), "--html", "--out", str(out), "--force"]) == 0
    assert f"{out} (7 figures" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    for external in ('src="http', "<link", "<script", "url("):
        assert external not in html, external  # nothing fetched: it can be mailed, archived
    doc = _Html()
    doc.feed(html)
    assert doc.headings[0] == "IONM case report"
    for h in ("Baselines", "Trends — L median", "Trends — R median", "Alarm and event timeline",
              "Acknowledgements and audio pauses", "Signature"):
        assert h in doc.headings, h
    assert ALARM_ID in doc.cells and "screw L4 left" in doc.cells
    assert len(doc.images) == 7  # baselines, 1 alarm, 3 events, 2 trend pages
    for src in doc.images:
        assert src.startswith("data:image/png;base64,")  # embedded: nothing to fetch
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
                         .convert("RGB"))
        assert (img.min(axis=-1) < 200).mean() > 0.01, "an empty figure"
