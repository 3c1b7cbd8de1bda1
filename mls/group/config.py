"""Policy a group applies: what the application chooses and RFC 9420 leaves open.

The knobs are the ones RFC 9420 names as application policy: the wire format of handshake
messages (§6, §12.4), how many past epochs stay readable (§15.2), the out-of-order window of
the sender ratchets (§9.4, §15.3), padding (§6.3.1), leaf lifetimes (§7.2, §7.3) and the
Authentication Service (§5.3.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import UsageError
from ..secret_tree import RatchetPolicy
from ..tree_validation import CredentialValidator, LifetimePolicy

DEFAULT_PAST_EPOCHS = 2
"""Past epochs whose application messages stay readable (RFC 9420 §15.2 leaves it to policy)."""

DEFAULT_RESUMPTION_PSK_EPOCHS = 32
"""Past epochs whose resumption PSK a member keeps for PSK proposals (RFC 9420 §8.6)."""

ExternalPskLookup = Callable[[bytes], "bytes | None"]
"""Returns the secret of an external PSK by its ``psk_id``, or ``None`` if unknown (§8.4)."""


@dataclass(frozen=True)
class GroupConfig:
    """A group's local policy. Not part of the persisted state: pass it again on load.

    Attributes:
        handshake_private: send proposals and commits as PrivateMessage instead of the
            default PublicMessage (RFC 9420 §6).
        accept_public_handshake / accept_private_handshake: which wire formats received
            handshake messages may use (VALIDATION PUB-10).
        past_epochs: past epochs whose application messages still decrypt.
        resumption_psk_epochs: past epochs whose resumption PSK is kept.
        ratchet_policy: out-of-order bounds of the sender ratchets (PRIV-06).
        padding: zero bytes padded onto each PrivateMessage's content, rounded up to a
            multiple of this (0 = none).
        lifetime_policy: how received leaf lifetimes are checked (LN-07).
        credential_validator: the Authentication Service (CRD-01); ``None`` accepts all.
        external_psks: the external PSKs this member holds, by ``psk_id``.
        ratchet_tree_in_welcome: put the ``ratchet_tree`` extension in Welcomes' GroupInfo.
    """

    handshake_private: bool = False
    accept_public_handshake: bool = True
    accept_private_handshake: bool = True
    past_epochs: int = DEFAULT_PAST_EPOCHS
    resumption_psk_epochs: int = DEFAULT_RESUMPTION_PSK_EPOCHS
    ratchet_policy: RatchetPolicy = field(default_factory=RatchetPolicy)
    padding: int = 0
    lifetime_policy: LifetimePolicy = field(default_factory=LifetimePolicy)
    credential_validator: CredentialValidator | None = None
    external_psks: Mapping[bytes, bytes] = field(default_factory=dict, repr=False)
    ratchet_tree_in_welcome: bool = True

    def __post_init__(self) -> None:
        if self.past_epochs < 0 or self.resumption_psk_epochs < 0 or self.padding < 0:
            raise UsageError("group policy bounds must not be negative")
