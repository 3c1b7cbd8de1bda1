from __future__ import annotations

from typing import Any

import pytest

from ._runner import run_case, vector_params


@pytest.mark.parametrize(("file_name", "case"), vector_params("key-schedule.json"))
def test_key_schedule(file_name: str, case: dict[str, Any]) -> None:
    run_case(file_name, case)
