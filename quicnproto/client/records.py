"""What the agent keeps in the client state besides groups: outbox entries and KeyPackage
entries, each a small versionless TLS-style encoding (:mod:`mls.codec`).

An :class:`Outgoing` is saved before its first send and deleted once the node confirmed it
(see :mod:`quicnproto.client.agent`); a KeyPackage entry holds the KeyPackage and its private
keys until a Welcome consumes it (RFC 9420 §16.8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mls import JoinKeys, KeyPackage, KeyPackagePrivateKeys
from mls.codec import Reader, Writer, reader_for
from mls.errors import DecodeError
from mls.framing import MLSMessage


def encode_key_package_entry(kp: KeyPackage, keys: KeyPackagePrivateKeys) -> bytes:
    w = Writer()
    w.opaque(MLSMessage.of(kp).encode())
    w.opaque(keys.to_bytes())
    return w.getvalue()


def decode_key_package_entry(blob: bytes) -> JoinKeys:
    r = reader_for(blob)
    body = MLSMessage.decode(r.opaque()).body
    keys = KeyPackagePrivateKeys.from_bytes(r.opaque())
    r.expect_end()
    if not isinstance(body, KeyPackage):
        raise DecodeError("stored KeyPackage entry holds no KeyPackage")
    return JoinKeys(body, keys.init_priv, keys.encryption_priv, keys.signature_priv)


@dataclass
class Outgoing:
    """A message saved in the outbox before it is sent (see the module docstring).

    Attributes:
        message_id: the node's idempotency key.
        group_id: the group it belongs to.
        payload: the MLSMessage.
        recipients: identity keys it goes to.
        epoch: for a Commit, the epoch it was built in (the node accepts one per epoch).
        staged: for a Commit, the group's serialized state once it is accepted.
        welcome: for a Commit adding members, the Welcome and the identity keys it goes to.
    """

    message_id: bytes
    group_id: bytes
    payload: bytes = field(repr=False)
    recipients: tuple[bytes, ...]
    epoch: int | None = None
    staged: bytes | None = field(default=None, repr=False)
    welcome: bytes | None = field(default=None, repr=False)
    welcome_recipients: tuple[bytes, ...] = ()

    def encode(self) -> bytes:
        w = Writer()
        w.opaque(self.message_id)
        w.opaque(self.group_id)
        w.opaque(self.payload)
        _write_opaques(w, self.recipients)
        w.uint(0 if self.epoch is None else self.epoch + 1, 8)
        w.opaque(self.staged or b"")
        w.opaque(self.welcome or b"")
        _write_opaques(w, self.welcome_recipients)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Outgoing:
        r = reader_for(data, max_size=1 << 30)
        message_id, group_id, payload = r.opaque(), r.opaque(), r.opaque()
        recipients = _opaques(r.vector())
        epoch_plus = r.uint(8)
        staged, welcome = r.opaque(), r.opaque()
        welcome_recipients = _opaques(r.vector())
        r.expect_end()
        return cls(
            message_id,
            group_id,
            payload,
            recipients,
            None if epoch_plus == 0 else epoch_plus - 1,
            staged or None,
            welcome or None,
            welcome_recipients,
        )


def _write_opaques(w: Writer, items: Sequence[bytes]) -> None:
    def body(v: Writer) -> None:
        for item in items:
            v.opaque(item)

    w.vector(body)


def _opaques(r: Reader) -> tuple[bytes, ...]:
    out = []
    while not r.at_end():
        out.append(r.opaque())
    return tuple(out)
