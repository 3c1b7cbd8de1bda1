"""The confirmed and interim transcript hashes (RFC 9420 §8.2).

Each Commit extends the transcript in two steps. Its ``ConfirmedTranscriptHashInput`` (wire
format, content and signature: the AuthenticatedContent without the confirmation tag) is
hashed after the previous interim hash, giving the new epoch's confirmed transcript hash;
its confirmation tag is then hashed after that, giving the new interim hash::

    confirmed[n] = Hash(interim[n-1] || ConfirmedTranscriptHashInput)
    interim[n]   = Hash(confirmed[n] || InterimTranscriptHashInput)   # = opaque tag<V>

The confirmed hash goes into the new GroupContext (and hence into the key schedule), and the
confirmation tag is a MAC over it with the new epoch's ``confirmation_key``, which is why the
two steps are separate functions. A joiner computes the interim hash from the GroupInfo's
confirmed hash and confirmation tag (:func:`interim_transcript_hash`).

Contract: every function is pure.
"""

from __future__ import annotations

from .codec import Writer
from .crypto.ciphersuite import Suite
from .errors import UsageError
from .framing import AuthenticatedContent, ContentType, FramedContent, WireFormat


def confirmed_transcript_hash_input(
    wire_format: WireFormat, content: FramedContent, signature: bytes
) -> bytes:
    """The encoded ``ConfirmedTranscriptHashInput`` of a Commit (RFC 9420 §8.2).

    Raises:
        UsageError: ``content`` is not a Commit.
    """
    if content.content_type != ContentType.COMMIT:
        raise UsageError("only Commit content enters the transcript")
    w = Writer()
    w.uint(int(wire_format), 2)
    content.encode_into(w)
    w.opaque(signature)
    return w.getvalue()


def confirmed_transcript_hash(
    suite: Suite,
    interim_transcript_hash_before: bytes,
    wire_format: WireFormat,
    content: FramedContent,
    signature: bytes,
) -> bytes:
    """The confirmed transcript hash of the epoch a Commit creates (RFC 9420 §8.2).

    Args:
        interim_transcript_hash_before: the interim hash of the epoch the Commit was sent in.
        wire_format, content, signature: the Commit's AuthenticatedContent fields.
    """
    return suite.hash(
        interim_transcript_hash_before
        + confirmed_transcript_hash_input(wire_format, content, signature)
    )


def interim_transcript_hash(
    suite: Suite, confirmed_transcript_hash: bytes, confirmation_tag: bytes
) -> bytes:
    """The interim transcript hash following ``confirmed_transcript_hash`` (RFC 9420 §8.2)."""
    w = Writer()
    w.opaque(confirmation_tag)
    return suite.hash(confirmed_transcript_hash + w.getvalue())


def next_transcript_hashes(
    suite: Suite, interim_transcript_hash_before: bytes, commit: AuthenticatedContent
) -> tuple[bytes, bytes]:
    """``(confirmed, interim)`` transcript hashes after a Commit that carries its
    confirmation tag (RFC 9420 §8.2).

    Raises:
        UsageError: ``commit`` is not a Commit, or has no confirmation tag.
    """
    tag = commit.auth.confirmation_tag
    if tag is None:
        raise UsageError("a Commit's AuthenticatedContent must carry a confirmation tag")
    confirmed = confirmed_transcript_hash(
        suite,
        interim_transcript_hash_before,
        commit.wire_format,
        commit.content,
        commit.auth.signature,
    )
    return confirmed, interim_transcript_hash(suite, confirmed, tag)
