"""`ionm report` on a case with EEG and free-running EMG and no evoked-potential site: their
trends get a page (drawn, the A-train alarm marked), and no baseline, trace or EP trend page."""

from __future__ import annotations

from pathlib import Path

from report_helpers import A_TRAIN_ID, bluish, cells, pdf_pages

from appliance.cli import main as ionm


def yellowish(img):  # a medium-priority alarm's line (#e0a000)
    a = img.astype(int)
    return (a[..., 0] > 180) & (a[..., 1] > 110) & (a[..., 1] < 200) & (a[..., 2] < 100)


def test_report_draws_eeg_and_emg_trends(continuous_case_dir: Path, tmp_path: Path) -> None:
    out = tmp_path
    assert ionm(["report", str(continuous_case_dir), "--out", str(out / "r.pdf")]) == 0
    pages, text = pdf_pages(out / "r.pdf", out)
    assert len(pages) == 3, [t[:40] for t in text]  # header, EEG/EMG trends, timeline
    assert "EEG and EMG trends" in text[1] and "Baselines" not in "".join(text)
    # SEF95 per EEG channel (no EEG baseline yet: no side-ratio panel), EMG RMS, train time
    for i, panel in enumerate(cells(pages[1], 3, 1)):
        assert bluish(panel).sum() > 40, f"panel {i} is empty"
        assert yellowish(panel).sum() > 20, f"panel {i}: the A-train alarm is not marked"
    assert A_TRAIN_ID in text[2] and "raised" in text[2]
