"""Report fixtures: real cases made once per session (helpers in report_helpers.py)."""

from pathlib import Path

import pytest
from report_helpers import make_case, make_continuous_case


@pytest.fixture(scope="session")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_case(tmp_path_factory.mktemp("report-case"))


@pytest.fixture(scope="session")
def continuous_case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_continuous_case(tmp_path_factory.mktemp("continuous-case"))
