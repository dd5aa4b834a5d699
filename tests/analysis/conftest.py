"""Analysis fixtures (helpers live in analysis_helpers.py)."""

import pytest
from analysis_helpers import synth_stream


@pytest.fixture
def synth():
    return synth_stream
