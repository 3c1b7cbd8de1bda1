from __future__ import annotations

from typing import Any

import pytest

from ._runner import VECTORS, run_case, vector_params

PARAMS = vector_params("messages.json")


def test_messages_file_has_every_case() -> None:
    # Coverage guard: the official file holds 300 cases and every one is parametrised.
    assert len(PARAMS) == 300
    assert (VECTORS / "messages.json").is_file()


@pytest.mark.parametrize(("file_name", "case"), PARAMS)
def test_messages(file_name: str, case: dict[str, Any]) -> None:
    run_case(file_name, case)
