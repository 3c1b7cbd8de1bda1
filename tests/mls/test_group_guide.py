"""The example in ``docs/group-guide.md`` runs as written, so the guide cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mls.secret_tree import RULE_CONSUMED

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "group-guide.md"


def python_blocks(markdown: str) -> list[str]:
    """The bodies of the fenced ```python blocks of ``markdown``, in order."""
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.DOTALL | re.MULTILINE)


def test_guide_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = python_blocks(GUIDE.read_text())
    assert len(blocks) == 1, "the guide holds one runnable example"
    exec(compile(blocks[0], str(GUIDE), "exec"), {"__name__": "group_guide"})  # noqa: S102
    out = capsys.readouterr().out
    assert f"replay refused: {RULE_CONSUMED}" in out
    assert "charlie is out: UsageError" in out
