"""Pre-shared key identifiers (RFC 9420 §8.4).

Only the wire forms live here: :class:`PreSharedKeyID` names a PSK in a PreSharedKey proposal
and in a Welcome's GroupSecrets, and :class:`PSKLabel` is the context of each PSK's step in the
``psk_secret`` chain. The chain itself is computed by ``mls.psk``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Annotated

from .codec import U16, U64, Empty, Enum, Opaque, Select, Struct


class PSKType(IntEnum):
    """Where a PSK comes from (RFC 9420 §8.4). A closed enum."""

    EXTERNAL = 1
    RESUMPTION = 2


class ResumptionPSKUsage(IntEnum):
    """Why a resumption PSK is used (RFC 9420 §8.4). A closed enum."""

    APPLICATION = 1
    REINIT = 2
    BRANCH = 3


@dataclass(frozen=True)
class PreSharedKeyID(Struct):
    """Names one PSK (RFC 9420 §8.4).

    For ``external`` PSKs ``psk_id`` is set; for ``resumption`` PSKs ``usage``,
    ``psk_group_id`` and ``psk_epoch`` are. ``psk_nonce`` is fresh, ``Nh`` bytes long.
    """

    psktype: Annotated[PSKType, Enum(PSKType, 1)]
    psk_id: Annotated[
        bytes | None, Select("psktype", {PSKType.EXTERNAL: Opaque, PSKType.RESUMPTION: Empty})
    ] = field(default=None, kw_only=True)
    usage: Annotated[
        ResumptionPSKUsage | None,
        Select(
            "psktype",
            {PSKType.EXTERNAL: Empty, PSKType.RESUMPTION: Enum(ResumptionPSKUsage, 1)},
        ),
    ] = field(default=None, kw_only=True)
    psk_group_id: Annotated[
        bytes | None, Select("psktype", {PSKType.EXTERNAL: Empty, PSKType.RESUMPTION: Opaque})
    ] = field(default=None, kw_only=True)
    psk_epoch: Annotated[
        int | None, Select("psktype", {PSKType.EXTERNAL: Empty, PSKType.RESUMPTION: U64})
    ] = field(default=None, kw_only=True)
    psk_nonce: Annotated[bytes, Opaque]

    @classmethod
    def external(cls, psk_id: bytes, psk_nonce: bytes) -> PreSharedKeyID:
        return cls(PSKType.EXTERNAL, psk_id=psk_id, psk_nonce=psk_nonce)

    @classmethod
    def resumption(
        cls, usage: ResumptionPSKUsage, psk_group_id: bytes, psk_epoch: int, psk_nonce: bytes
    ) -> PreSharedKeyID:
        return cls(
            PSKType.RESUMPTION,
            usage=usage,
            psk_group_id=psk_group_id,
            psk_epoch=psk_epoch,
            psk_nonce=psk_nonce,
        )


@dataclass(frozen=True)
class PSKLabel(Struct):
    """The context of the ``index``-th of ``count`` PSKs in the ``psk_secret`` chain
    (RFC 9420 §8.4)."""

    id: PreSharedKeyID
    index: Annotated[int, U16]
    count: Annotated[int, U16]
