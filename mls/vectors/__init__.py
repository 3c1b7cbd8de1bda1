"""Runners for the MLS working group's test vectors (``test-vectors.md`` in
mlswg/mls-implementations).

Each kind of vector file has a module here, named after the file, exposing
``check(case) -> None``: it recomputes every output the case provides from its inputs and
raises :class:`Mismatch` naming the first field that differed. Expected values always come
from the case, never from our own output.

``python -m mls.vectors FILE [FILE ...] [--kind KIND]`` runs them from the command line.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

KINDS: dict[str, str] = {
    "tree-math": "tree_math",
    "crypto-basics": "crypto_basics",
    "deserialization": "deserialization",
    "messages": "messages",
    "secret-tree": "secret_tree",
    "message-protection": "message_protection",
    "key-schedule": "key_schedule",
    "psk-secret": "psk_secret",
    "transcript-hashes": "transcript_hashes",
    "welcome": "welcome",
    "tree-operations": "tree_operations",
    "tree-validation": "tree_validation",
    "treekem": "treekem",
    "passive-client": "passive_client",
}
"""Vector kind (named after the official file) -> module in this package."""

SKIPS: dict[tuple[str, int], str] = {}
"""(file name, case index) -> the reason the case is skipped. Starts empty; every entry needs
a linked issue."""


class Mismatch(Exception):
    """A recomputed value differed from the vector's.

    Attributes:
        field: the vector field that differed (``"epochs[3].commit_secret"``).
    """

    def __init__(self, field: str, detail: str = "") -> None:
        self.field = field
        super().__init__(f"{field} differs" + (f": {detail}" if detail else ""))


class KindNotImplemented(Exception):
    """The runner for a vector kind does not exist yet."""


def expect(field: str, actual: bytes | int | str | None, expected: Any) -> None:
    """Compares a recomputed value with the vector's (hex strings compare as bytes)."""
    if isinstance(actual, (bytes, bytearray)):
        if expected is None or bytes(actual) != bytes.fromhex(expected):
            raise Mismatch(field, f"got {bytes(actual).hex()[:64]}")
    elif actual != expected:
        raise Mismatch(field, f"got {actual!r}, expected {expected!r}")


def kind_of(path: str | Path) -> str:
    """The kind named by a vector file's name (``psk_secret.json`` -> ``psk-secret``)."""
    stem = Path(path).stem.replace("_", "-")
    if stem.startswith("passive-client"):
        return "passive-client"
    if stem not in KINDS:
        raise KeyError(stem)
    return stem


def load_cases(path: str | Path) -> list[dict[str, Any]]:
    data = json.loads(Path(path).read_text())
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of cases")
    return data


def checker(kind: str) -> Callable[[dict[str, Any]], None]:
    try:
        module = importlib.import_module(f"{__name__}.{KINDS[kind]}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{KINDS[kind]}":
            raise KindNotImplemented(kind) from None
        raise
    check: Callable[[dict[str, Any]], None] = module.check
    return check


def case_id(path: str | Path, index: int, case: dict[str, Any]) -> str:
    suite = case.get("cipher_suite")
    return f"{Path(path).stem}[{index}]" + (f"-cs{suite}" if suite is not None else "")
