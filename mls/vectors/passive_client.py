"""``passive-client-*.json``: a member that joins by Welcome and then only follows the
group's Commits (RFC 9420 §12.4.2, §12.4.3.1).

Each case gives a KeyPackage with its private keys, a Welcome (and, when the GroupInfo does
not carry it, the ratchet tree), the external PSKs the member holds, and a list of epochs,
each a list of proposal messages and a Commit. After joining and after each Commit the
member's epoch authenticator must equal the vector's.
"""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import Suite, get_suite
from ..errors import MLSError
from ..framing import MLSMessage
from ..group.config import GroupConfig
from ..group.process import process_message
from ..group.staged_commit import StagedCommit
from ..group.state import GroupState
from ..group.welcome import JoinKeys, join_from_welcome
from ..key_package import KeyPackage
from ..messages import Welcome
from ..tree_validation import LifetimePolicy
from . import Mismatch, expect


def _signature_priv(suite: Suite, raw: bytes) -> bytes:
    """The signature key, taking the seed half of a ``seed || public`` encoding (some
    Ed25519 keys in these files are 64 bytes; see the vector README)."""
    try:
        suite.signature_public_key(raw)
        return raw
    except (MLSError, ValueError):
        half = raw[: len(raw) // 2]
        suite.signature_public_key(half)
        return half


def _hpke_priv(suite: Suite, raw: bytes) -> bytes:
    """An HPKE private key at its fixed length: the P-521 keys in these files drop leading
    zero bytes (RFC 9180 §7.1.2 serializes them as 66 bytes), so they are left-padded."""
    size = suite.hpke.kem.n_sk
    return raw.rjust(size, b"\0") if len(raw) < size else raw


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    h = bytes.fromhex
    key_package = MLSMessage.decode(h(case["key_package"])).body
    welcome = MLSMessage.decode(h(case["welcome"])).body
    if not isinstance(key_package, KeyPackage):
        raise Mismatch("key_package", "not an MLSMessage(KeyPackage)")
    if not isinstance(welcome, Welcome):
        raise Mismatch("welcome", "not an MLSMessage(Welcome)")
    # Leaf lifetimes in these files may have ended: lifetime checks are a policy switched off
    # here and tested separately (VALIDATION §2.3).
    config = GroupConfig(
        lifetime_policy=LifetimePolicy.disabled(),
        external_psks={h(p["psk_id"]): h(p["psk"]) for p in case["external_psks"]},
    )
    keys = JoinKeys(
        key_package,
        _hpke_priv(suite, h(case["init_priv"])),
        _hpke_priv(suite, h(case["encryption_priv"])),
        _signature_priv(suite, h(case["signature_priv"])),
    )
    ref = key_package.ref(suite)
    tree = case.get("ratchet_tree")
    try:
        state, _ = join_from_welcome(
            welcome,
            lambda r: keys if r == ref else None,
            config,
            ratchet_tree=None if tree is None else h(tree),
        )
    except MLSError as exc:
        raise Mismatch("welcome", _describe(exc)) from None
    # The joiner's epoch authenticator matches the group's.
    expect(
        "initial_epoch_authenticator",
        state.secrets.epoch_authenticator,
        case["initial_epoch_authenticator"],
    )
    for i, epoch in enumerate(case["epochs"]):
        state = _follow(state, i, epoch, config)


def _follow(state: GroupState, i: int, epoch: dict[str, Any], config: GroupConfig) -> GroupState:
    h = bytes.fromhex
    # Every proposal of the epoch is accepted and cached before the Commit that uses it.
    for j, proposal in enumerate(epoch["proposals"]):
        try:
            process_message(state, MLSMessage.decode(h(proposal)), config)
        except MLSError as exc:
            raise Mismatch(f"epochs[{i}].proposals[{j}]", _describe(exc)) from None
    try:
        staged = process_message(state, MLSMessage.decode(h(epoch["commit"])), config)
    except MLSError as exc:
        raise Mismatch(f"epochs[{i}].commit", _describe(exc)) from None
    if not isinstance(staged, StagedCommit):
        raise Mismatch(f"epochs[{i}].commit", f"processed as {type(staged).__name__}")
    # After the Commit the member's epoch authenticator is the vector's.
    expect(
        f"epochs[{i}].epoch_authenticator",
        staged.state.secrets.epoch_authenticator,
        epoch["epoch_authenticator"],
    )
    return staged.state


def _describe(exc: MLSError) -> str:
    rule = getattr(exc, "rule", None)
    return f"{type(exc).__name__}" + (f" ({rule})" if rule else f": {exc}")
