"""``transcript-hashes.json``: updating the transcript with a Commit (RFC 9420 §8.2)."""

from __future__ import annotations

from typing import Any

from ..crypto.ciphersuite import get_suite
from ..errors import VerificationError
from ..framing import AuthenticatedContent, ContentType
from ..key_schedule import verify_confirmation_tag
from ..transcript import confirmed_transcript_hash, interim_transcript_hash, next_transcript_hashes
from . import Mismatch, expect


def check(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    content = AuthenticatedContent.decode(bytes.fromhex(case["authenticated_content"]))
    # The AuthenticatedContent carries a Commit (hence a confirmation tag).
    expect("authenticated_content.content_type", content.content.content_type, ContentType.COMMIT)
    tag = content.auth.confirmation_tag
    if tag is None:
        raise Mismatch("authenticated_content.auth.confirmation_tag", "missing")
    # The confirmed hash after is Hash(interim before || wire_format, content, signature).
    confirmed = confirmed_transcript_hash(
        suite,
        bytes.fromhex(case["interim_transcript_hash_before"]),
        content.wire_format,
        content.content,
        content.auth.signature,
    )
    expect("confirmed_transcript_hash_after", confirmed, case["confirmed_transcript_hash_after"])
    # The confirmation tag is the MAC of that confirmed hash under confirmation_key.
    try:
        verify_confirmation_tag(suite, bytes.fromhex(case["confirmation_key"]), confirmed, tag)
    except VerificationError:
        raise Mismatch("authenticated_content.auth.confirmation_tag", "does not verify") from None
    # The interim hash after is Hash(confirmed after || confirmation_tag<V>).
    interim = interim_transcript_hash(suite, confirmed, tag)
    expect("interim_transcript_hash_after", interim, case["interim_transcript_hash_after"])
    # The one-call form gives the same pair.
    both = next_transcript_hashes(
        suite, bytes.fromhex(case["interim_transcript_hash_before"]), content
    )
    expect("confirmed_transcript_hash_after", both[0], case["confirmed_transcript_hash_after"])
    expect("interim_transcript_hash_after", both[1], case["interim_transcript_hash_after"])
