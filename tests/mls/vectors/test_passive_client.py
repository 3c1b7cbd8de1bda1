from __future__ import annotations

from typing import Any

import pytest

from ._runner import run_case, vector_params


@pytest.mark.parametrize(
    ("file_name", "case"),
    [
        *vector_params("passive-client-welcome.json"),
        *vector_params("passive-client-handling-commit.json"),
        *vector_params("passive-client-random.json"),
    ],
)
def test_passive_client(file_name: str, case: dict[str, Any]) -> None:
    run_case(file_name, case)
