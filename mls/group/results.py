"""What processing an incoming message returns (RFC 9420 §6, §12).

Frozen result classes; a Commit's result is the :class:`~mls.group.staged_commit.StagedCommit`
itself, which the caller merges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..credentials import Credential
from ..framing import Sender
from ..messages import Proposal
from ..tree_math import LeafIndex


@dataclass(frozen=True)
class ApplicationMessage:
    """Application data from a member (RFC 9420 §6.3).

    Attributes:
        sender: the sender's leaf in the epoch the message was sent in.
        credential: the sender's credential in that epoch.
        data: the plaintext.
        authenticated_data: the sender's unencrypted, authenticated data.
        epoch: the epoch the message was sent in (the current one or a retained one).
        generation: its generation in the sender's application ratchet.
    """

    sender: LeafIndex
    credential: Credential
    data: bytes = field(repr=False)
    authenticated_data: bytes
    epoch: int
    generation: int


@dataclass(frozen=True)
class ProposalMessage:
    """A proposal now cached in this epoch (RFC 9420 §12.1).

    Attributes:
        ref: its ProposalRef (what a Commit names it by).
        proposal: the proposal.
        sender: who proposed it.
        duplicate: the same proposal was already cached (ACC-07): nothing changed.
    """

    ref: bytes
    proposal: Proposal
    sender: Sender
    duplicate: bool = False


@dataclass(frozen=True)
class OwnMessage:
    """A PrivateMessage this member sent, delivered back to it (VALIDATION PRIV-09). Its key
    was consumed when it was sent, so it cannot be decrypted again; nothing changed."""

    epoch: int
    generation: int
