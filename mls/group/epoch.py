"""Entering the next epoch: PSKs, transcript hashes, key schedule (RFC 9420 §8, §8.2, §8.4).

Both sides of a Commit call :func:`next_epoch` with the same inputs and get the same
GroupContext, secrets, confirmation tag and interim transcript hash; :func:`resolve_psks`
finds the PSK values a Commit or a Welcome names.

Contract: pure functions over their arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..crypto.ciphersuite import Suite
from ..errors import ValidationError
from ..extensions import Extension
from ..framing import FramedContent, WireFormat
from ..group_context import GroupContext
from ..key_schedule import EpochSecrets
from ..psk import psk_secret
from ..psk_id import PreSharedKeyID, PSKType
from ..ratchet_tree import RatchetTree
from ..transcript import confirmed_transcript_hash, interim_transcript_hash

RULE_PSK_UNKNOWN = "§12.4.2/psk-unavailable"


@dataclass(frozen=True)
class NextEpoch:
    """The public and secret outcome of a Commit (RFC 9420 §8).

    Attributes:
        group_context: the new GroupContext.
        secrets: its key schedule.
        confirmation_tag: ``MAC(confirmation_key, confirmed_transcript_hash)``.
        interim_transcript_hash: the new interim transcript hash.
    """

    group_context: GroupContext
    secrets: EpochSecrets = field(repr=False)
    confirmation_tag: bytes
    interim_transcript_hash: bytes


def next_epoch(
    suite: Suite,
    group_context: GroupContext,
    interim_before: bytes,
    *,
    tree: RatchetTree,
    extensions: Sequence[Extension],
    wire_format: WireFormat,
    content: FramedContent,
    signature: bytes,
    init_secret: bytes,
    commit_secret: bytes | None,
    psk_secret_value: bytes | None,
) -> NextEpoch:
    """The next epoch after the Commit ``content`` signed with ``signature``.

    Args:
        group_context: the current GroupContext.
        interim_before: the current interim transcript hash.
        tree: the new tree (after proposals and path).
        extensions: the new GroupContext extensions.
        init_secret: the current ``init_secret``, or the external init secret (§8.3).
        commit_secret: from the path; ``None`` for a Commit without one (zero vector).
        psk_secret_value: from :func:`resolve_psks` and :func:`mls.psk.psk_secret`.
    """
    confirmed = confirmed_transcript_hash(suite, interim_before, wire_format, content, signature)
    context = dataclasses.replace(
        group_context,
        epoch=group_context.epoch + 1,
        tree_hash=tree.tree_hash(),
        confirmed_transcript_hash=confirmed,
        extensions=tuple(extensions),
    )
    secrets = EpochSecrets.from_init_secret(
        suite, init_secret, commit_secret, psk_secret_value, context
    )
    tag = secrets.confirmation_tag(suite, confirmed)
    return NextEpoch(context, secrets, tag, interim_transcript_hash(suite, confirmed, tag))


def resolve_psks(
    suite: Suite,
    psk_ids: Sequence[PreSharedKeyID],
    *,
    group_id: bytes,
    resumption_psks: Mapping[int, bytes],
    external_psks: Mapping[bytes, bytes],
    other_groups: Mapping[tuple[bytes, int], bytes] | None = None,
) -> bytes | None:
    """``psk_secret`` for the PSKs ``psk_ids`` names, in order (RFC 9420 §8.4), or ``None``
    when there are none.

    Args:
        group_id: this group's id (resumption PSKs of this group come from
            ``resumption_psks``, by epoch).
        external_psks: external PSK secrets by ``psk_id``.
        other_groups: ``(group_id, epoch) -> resumption_psk`` of other groups (ReInit and
            branch, §11).

    Raises:
        ValidationError: rule :data:`RULE_PSK_UNKNOWN` (COM-13, PSK-04, WEL-03).
    """
    if not psk_ids:
        return None
    values: list[tuple[PreSharedKeyID, bytes]] = []
    for psk in psk_ids:
        value: bytes | None
        if psk.psktype == PSKType.EXTERNAL:
            assert psk.psk_id is not None
            value = external_psks.get(psk.psk_id)
        else:
            assert psk.psk_group_id is not None and psk.psk_epoch is not None
            if psk.psk_group_id == group_id:
                value = resumption_psks.get(psk.psk_epoch)
            else:
                value = (other_groups or {}).get((psk.psk_group_id, psk.psk_epoch))
        if value is None:
            raise ValidationError(RULE_PSK_UNKNOWN, f"PSK {psk.psktype.name.lower()} not held")
        values.append((psk, value))
    return psk_secret(suite, values)
