"""The MLS key schedule: from one epoch's secrets to the next (RFC 9420 §8).

A new epoch mixes three inputs into the previous epoch's ``init_secret``: the ``commit_secret``
of the Commit's UpdatePath (or zeros), the ``psk_secret`` of the injected PSKs (or zeros,
see :mod:`mls.psk`), and the new epoch's encoded :class:`~mls.group_context.GroupContext`::

    joiner_secret = ExpandWithLabel(Extract(init_secret, commit_secret), "joiner", GC, Nh)
    member_secret = Extract(joiner_secret, psk_secret)
    welcome_secret = DeriveSecret(member_secret, "welcome")
    epoch_secret = ExpandWithLabel(member_secret, "epoch", GC, Nh)

Every other secret of the epoch is ``DeriveSecret(epoch_secret, <label>)``
(:class:`EpochSecrets`). A joiner enters the schedule at ``joiner_secret``
(:meth:`EpochSecrets.from_joiner_secret`); members enter at ``init_secret``
(:meth:`EpochSecrets.from_init_secret`); an external joiner obtains ``init_secret`` from the
previous epoch's external key pair (:func:`external_init_secret_for_joiner`, §8.3).

Contract: every function is pure. Secret-bearing fields never appear in a ``repr``, and tag
checks compare in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from .crypto.ciphersuite import Suite
from .crypto.labels import derive_secret, expand_with_label
from .errors import VerificationError
from .group_context import GroupContext

EXTERNAL_INIT_LABEL = b"MLS 1.0 external init secret"
"""The HPKE exporter context of the external init secret (RFC 9420 §8.3)."""


def zero_secret(suite: Suite) -> bytes:
    """``KDF.Nh`` zero bytes: the ``0`` of the key schedule diagrams (RFC 9420 §8)."""
    return bytes(suite.hash_length)


def _context_bytes(group_context: GroupContext | bytes) -> bytes:
    if isinstance(group_context, (bytes, bytearray)):
        return bytes(group_context)
    return group_context.encode()


def derive_joiner_secret(
    suite: Suite,
    init_secret: bytes,
    commit_secret: bytes | None,
    group_context: GroupContext | bytes,
) -> bytes:
    """``joiner_secret`` of the new epoch (RFC 9420 §8).

    Args:
        init_secret: the previous epoch's ``init_secret`` (or a fresh random one at group
            creation, or the external init secret of an external commit).
        commit_secret: the Commit's path secret product; ``None`` means the zero vector.
        group_context: the new epoch's GroupContext (or its encoding).
    """
    ikm = zero_secret(suite) if commit_secret is None else commit_secret
    prk = suite.kdf_extract(init_secret, ikm)
    return expand_with_label(
        suite, prk, b"joiner", _context_bytes(group_context), suite.hash_length
    )


def _member_secret(suite: Suite, joiner_secret: bytes, psk_secret: bytes | None) -> bytes:
    ikm = zero_secret(suite) if psk_secret is None else psk_secret
    return suite.kdf_extract(joiner_secret, ikm)


def derive_welcome_secret(suite: Suite, joiner_secret: bytes, psk_secret: bytes | None) -> bytes:
    """``welcome_secret`` (RFC 9420 §8); ``psk_secret=None`` means no PSKs (zero vector)."""
    return derive_secret(suite, _member_secret(suite, joiner_secret, psk_secret), b"welcome")


def welcome_key_nonce(suite: Suite, welcome_secret: bytes) -> tuple[bytes, bytes]:
    """``(welcome_key, welcome_nonce)`` that protect a Welcome's GroupInfo (RFC 9420 §12.4.3.1)."""
    key = expand_with_label(suite, welcome_secret, b"key", b"", suite.aead_key_length)
    nonce = expand_with_label(suite, welcome_secret, b"nonce", b"", suite.aead_nonce_length)
    return key, nonce


@dataclass(frozen=True, eq=False)
class EpochSecrets:
    """The secrets of one epoch (RFC 9420 §8, table "Epoch-Derived Secrets").

    ``joiner_secret`` and ``welcome_secret`` are kept because the committer needs them to
    build Welcome messages; callers drop this object (and keep only what they need) once the
    epoch's Welcomes are sent. ``init_secret`` is the input of the *next* epoch.
    The ``epoch_secret`` itself is not retained (§9.2: it is consumed by the derivations).
    There is no ``==``: compare secrets with :func:`hmac.compare_digest`.
    """

    joiner_secret: bytes = field(repr=False)
    welcome_secret: bytes = field(repr=False)
    sender_data_secret: bytes = field(repr=False)
    encryption_secret: bytes = field(repr=False)
    exporter_secret: bytes = field(repr=False)
    external_secret: bytes = field(repr=False)
    confirmation_key: bytes = field(repr=False)
    membership_key: bytes = field(repr=False)
    resumption_psk: bytes = field(repr=False)
    epoch_authenticator: bytes = field(repr=False)
    init_secret: bytes = field(repr=False)

    @classmethod
    def from_joiner_secret(
        cls,
        suite: Suite,
        joiner_secret: bytes,
        psk_secret: bytes | None,
        group_context: GroupContext | bytes,
    ) -> EpochSecrets:
        """The epoch's secrets from its ``joiner_secret`` (how a Welcome's joiner enters).

        Args:
            psk_secret: from :func:`mls.psk.psk_secret`; ``None`` means no PSKs.
            group_context: the epoch's GroupContext (or its encoding).
        """
        member = _member_secret(suite, joiner_secret, psk_secret)
        epoch_secret = expand_with_label(
            suite, member, b"epoch", _context_bytes(group_context), suite.hash_length
        )

        def d(label: bytes) -> bytes:
            return derive_secret(suite, epoch_secret, label)

        return cls(
            joiner_secret=joiner_secret,
            welcome_secret=derive_secret(suite, member, b"welcome"),
            sender_data_secret=d(b"sender data"),
            encryption_secret=d(b"encryption"),
            exporter_secret=d(b"exporter"),
            external_secret=d(b"external"),
            confirmation_key=d(b"confirm"),
            membership_key=d(b"membership"),
            resumption_psk=d(b"resumption"),
            epoch_authenticator=d(b"authentication"),
            init_secret=d(b"init"),
        )

    @classmethod
    def from_init_secret(
        cls,
        suite: Suite,
        init_secret: bytes,
        commit_secret: bytes | None,
        psk_secret: bytes | None,
        group_context: GroupContext | bytes,
    ) -> EpochSecrets:
        """The new epoch's secrets from the previous ``init_secret`` (how members advance).

        Args:
            init_secret: the previous epoch's ``init_secret`` (or the external init secret).
            commit_secret: ``None`` means the zero vector (a Commit without a path).
            psk_secret: ``None`` means no PSKs.
            group_context: the *new* epoch's GroupContext (or its encoding).
        """
        joiner = derive_joiner_secret(suite, init_secret, commit_secret, group_context)
        return cls.from_joiner_secret(suite, joiner, psk_secret, group_context)

    def welcome_key_nonce(self, suite: Suite) -> tuple[bytes, bytes]:
        """``(welcome_key, welcome_nonce)`` of this epoch (RFC 9420 §12.4.3.1)."""
        return welcome_key_nonce(suite, self.welcome_secret)

    def external_key_pair(self, suite: Suite) -> tuple[bytes, bytes]:
        """``(external_priv, external_pub)`` = ``KEM.DeriveKeyPair(external_secret)`` (§8)."""
        return external_key_pair(suite, self.external_secret)

    def export(self, suite: Suite, label: bytes, context: bytes, length: int) -> bytes:
        """``MLS-Exporter(label, context, length)`` for this epoch (RFC 9420 §8.5)."""
        return export_secret(suite, self.exporter_secret, label, context, length)

    def confirmation_tag(self, suite: Suite, confirmed_transcript_hash: bytes) -> bytes:
        """This epoch's confirmation tag (RFC 9420 §6.1, §8.2)."""
        return confirmation_tag(suite, self.confirmation_key, confirmed_transcript_hash)


def export_secret(
    suite: Suite, exporter_secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """``MLS-Exporter(label, context, length)`` (RFC 9420 §8.5)::

    ExpandWithLabel(DeriveSecret(exporter_secret, label), "exported", Hash(context), length)
    """
    return expand_with_label(
        suite,
        derive_secret(suite, exporter_secret, label),
        b"exported",
        suite.hash(context),
        length,
    )


def external_key_pair(suite: Suite, external_secret: bytes) -> tuple[bytes, bytes]:
    """``(external_priv, external_pub)`` = ``KEM.DeriveKeyPair(external_secret)`` (RFC 9420 §8)."""
    return suite.hpke.derive_key_pair(external_secret)


def external_init_secret_for_joiner(suite: Suite, external_pub: bytes) -> tuple[bytes, bytes]:
    """``(kem_output, init_secret)`` for an external joiner (RFC 9420 §8.3)::

    kem_output, ctx = SetupBaseS(external_pub, "")
    init_secret = ctx.export("MLS 1.0 external init secret", KDF.Nh)
    """
    enc, context = suite.hpke.setup_base_s(external_pub, b"")
    return enc, context.export(EXTERNAL_INIT_LABEL, suite.hash_length)


def external_init_secret_for_member(suite: Suite, external_priv: bytes, kem_output: bytes) -> bytes:
    """The ``init_secret`` a member recovers from an ExternalInit's ``kem_output`` (RFC 9420 §8.3).

    Raises:
        DecryptionError: ``kem_output`` is not a valid encapsulation for the suite's KEM.
    """
    context = suite.hpke.setup_base_r(kem_output, external_priv, b"")
    return context.export(EXTERNAL_INIT_LABEL, suite.hash_length)


def sender_data_key_nonce(
    suite: Suite, sender_data_secret: bytes, ciphertext: bytes
) -> tuple[bytes, bytes]:
    """``(sender_data_key, sender_data_nonce)`` for a PrivateMessage (RFC 9420 §6.3.2).

    Both are expanded from ``sender_data_secret`` with the ciphertext sample as context: its
    first ``KDF.Nh`` bytes, or all of it when it is shorter.
    """
    sample = ciphertext[: suite.hash_length]
    key = expand_with_label(suite, sender_data_secret, b"key", sample, suite.aead_key_length)
    nonce = expand_with_label(suite, sender_data_secret, b"nonce", sample, suite.aead_nonce_length)
    return key, nonce


def confirmation_tag(
    suite: Suite, confirmation_key: bytes, confirmed_transcript_hash: bytes
) -> bytes:
    """``MAC(confirmation_key, confirmed_transcript_hash)`` (RFC 9420 §6.1)."""
    return suite.mac(confirmation_key, confirmed_transcript_hash)


def verify_confirmation_tag(
    suite: Suite, confirmation_key: bytes, confirmed_transcript_hash: bytes, tag: bytes
) -> None:
    """Checks a confirmation tag in constant time (RFC 9420 §6.1, §12.4.2, §12.4.3.1).

    Raises:
        VerificationError: rule ``"§6.1/confirmation-tag"`` — the tag does not verify.
    """
    expected = confirmation_tag(suite, confirmation_key, confirmed_transcript_hash)
    if not hmac.compare_digest(expected, tag):
        raise VerificationError("§6.1/confirmation-tag", "confirmation tag does not verify")
