"""Shared pytest plumbing for the official vectors: one pytest case per JSON entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mls.vectors import SKIPS, case_id, checker, kind_of, load_cases

VECTORS = Path(__file__).resolve().parents[3].parent / "shared" / "mls-test-vectors"


def vector_params(file_name: str) -> list[Any]:
    """One ``pytest.param`` per case of ``file_name``; a missing or empty file is an error."""
    path = VECTORS / file_name
    if not path.is_file():
        raise FileNotFoundError(f"official vector file missing: {path}")
    cases = load_cases(path)
    if not cases:
        raise ValueError(f"{path} holds no cases")
    params = []
    for i, case in enumerate(cases):
        marks = []
        reason = SKIPS.get((file_name, i))
        if reason:
            marks.append(pytest.mark.skip(reason=reason))
        params.append(pytest.param(file_name, case, id=case_id(path, i, case), marks=marks))
    return params


def run_case(file_name: str, case: dict[str, Any]) -> None:
    checker(kind_of(file_name))(case)
