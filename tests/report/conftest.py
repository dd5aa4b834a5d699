"""Report fixtures: one real case for the module's tests (helpers in report_helpers.py)."""

from pathlib import Path

import pytest
from report_helpers import make_case


@pytest.fixture(scope="session")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_case(tmp_path_factory.mktemp("report-case"))
