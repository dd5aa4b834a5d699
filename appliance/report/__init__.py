"""`ionm report CASE_DIR`: a recorded case as a PDF (or a self-contained HTML file) for the
record: header, montage and settings, baselines, stacked averages around every alarm and event,
trends with criteria, the alarm and event timeline, acknowledgements and a signature line."""
