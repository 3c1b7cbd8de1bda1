from __future__ import annotations

import copy
from typing import Any

import pytest

from mls.vectors import Mismatch
from mls.vectors.crypto_basics import check

from ._runner import run_case, vector_params

PARAMS = vector_params("crypto-basics.json")


def test_one_case_per_suite() -> None:
    suites = sorted(case["cipher_suite"] for _, case in (p.values for p in PARAMS))
    assert suites == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(("file_name", "case"), PARAMS)
def test_crypto_basics(file_name: str, case: dict[str, Any]) -> None:
    run_case(file_name, case)


def _flip(hex_value: str) -> str:
    data = bytearray.fromhex(hex_value)
    data[-1] ^= 1
    return data.hex()


@pytest.mark.parametrize(
    ("section", "key", "field"),
    [
        ("ref_hash", "out", "ref_hash.out"),
        ("expand_with_label", "out", "expand_with_label.out"),
        ("derive_secret", "out", "derive_secret.out"),
        ("derive_tree_secret", "out", "derive_tree_secret.out"),
        ("sign_with_label", "signature", "sign_with_label.signature"),
        ("sign_with_label", "pub", "sign_with_label.pub"),
        ("encrypt_with_label", "ciphertext", "encrypt_with_label.ciphertext"),
        ("encrypt_with_label", "plaintext", "encrypt_with_label.plaintext"),
        ("encrypt_with_label", "pub", "encrypt_with_label.pub"),
    ],
)
def test_runner_reports_the_differing_field(section: str, key: str, field: str) -> None:
    """The runner is not vacuous: corrupting one expected value fails on exactly that field."""
    for param in PARAMS:
        case: dict[str, Any] = copy.deepcopy(param.values[1])
        case[section][key] = _flip(case[section][key])
        with pytest.raises(Mismatch) as info:
            check(case)
        assert info.value.field == field, case["cipher_suite"]
