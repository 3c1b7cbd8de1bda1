"""The node's wire messages: Cap'n Proto envelopes mapped to plain Python values.

``schemas/*.capnp`` is the only definition of the RPC. This module loads it once with pycapnp
(serialization only; pycapnp's RPC needs asyncio) and converts between Cap'n Proto messages and
the frozen dataclasses below, so nothing outside this module touches a capnp object::

    frame bytes --decode_request--> (request_id, Request)      node side
    (request_id, Response | ErrorResponse) --encode_answer--> frame bytes
    frame bytes --decode_answer--> (request_id, Response | ErrorResponse)   client side

Contract: the ``decode_*`` functions treat their input as hostile. They read the unpacked
encoding only (no packed expansion bombs), with an explicit traversal limit proportional to the
frame length and a small nesting limit (VALIDATION SRV-FR-02..04, -06), copy every field out
while the reader is still open (SRV-FR-08) and raise only :class:`ProtocolError`. This module
imports no trio.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import capnp

from quicnproto.errors import ErrorCode, ProtocolError

from .rpc_messages import (
    Ack,
    Acked,
    Authenticate,
    Authenticated,
    Challenge,
    CommitEpoch,
    CountKeyPackages,
    CountQueue,
    Enqueue,
    Enqueued,
    ErrorResponse,
    Fetch,
    Fetched,
    FetchKeyPackage,
    GetChallenge,
    KeyPackageCount,
    KeyPackageFetched,
    KeyPackageUploaded,
    Ping,
    Pong,
    QueueCount,
    QueuedMessage,
    Request,
    Response,
    Stats,
    StatsAnswer,
    UploadKeyPackage,
)


def _schema_dir() -> Path:
    """``quicnproto/schemas`` in an installed package, else the source tree's ``schemas/``."""
    here = Path(__file__).resolve().parent
    installed = here / "schemas"
    return installed if (installed / "envelope.capnp").is_file() else here.parent / "schemas"


SCHEMA_DIR = _schema_dir()
"""Where ``envelope.capnp``, ``auth.capnp`` and ``delivery.capnp`` live."""

DEFAULT_NESTING_LIMIT = 16  # VALIDATION §5.7: nesting 16
TRAVERSAL_FACTOR = 2  # VALIDATION §5.7: traversal limit 2x the frame's words
TRAVERSAL_SLACK_WORDS = 64  # room for the fixed-size part of tiny messages

AUTH_CONTEXT = b"quicnproto auth v2\x00"
"""Prefix of the bytes a client signs to answer an authentication challenge (domain separation)."""

AUTH_NONCE_SIZE = 32
"""Length of the node's challenge nonce."""


def auth_message(node_certificate: bytes, nonce: bytes) -> bytes:
    """What a client signs to answer ``nonce`` from the node whose DER certificate it pinned.

    ``AUTH_CONTEXT || SHA-256(node_certificate) || nonce``. The certificate digest binds the
    proof to one node: a node cannot pass another node's challenge on to its own clients and
    then log in there as them with their answers (VALIDATION SRV-AU-01, SRV-Q-06).
    """
    return AUTH_CONTEXT + hashlib.sha256(node_certificate).digest() + nonce


capnp.remove_import_hook()
_envelope = capnp.load(str(SCHEMA_DIR / "envelope.capnp"), imports=[str(SCHEMA_DIR)])
_Envelope = _envelope.Envelope


# --- encoding ---------------------------------------------------------------------------------


def _set_data_list(builder: Any, name: str, items: tuple[bytes, ...]) -> None:
    lst = builder.init(name, len(items))
    for i, item in enumerate(items):
        lst[i] = item


def _fill_authenticate(b: Any, body: Authenticate) -> None:
    b.identityKey = body.identity_key
    b.signature = body.signature


def _fill_upload_key_package(b: Any, body: UploadKeyPackage) -> None:
    b.identityKey = body.identity_key
    b.package = body.package
    b.lastResort = body.last_resort


def _fill_enqueue(b: Any, body: Enqueue) -> None:
    _set_data_list(b, "recipients", body.recipients)
    b.payload = body.payload
    b.messageId = body.message_id
    if body.commit is None:
        b.commit.none = None
    else:
        h = b.commit.init("handshake")
        h.groupId = body.commit.group_id
        h.epoch = body.commit.epoch
    if body.welcome:
        b.welcome = body.welcome


def _fill_fetch(b: Any, body: Fetch) -> None:
    b.recipientKey = body.recipient_key
    b.afterSeq = body.after_seq
    b.limit = body.limit
    b.waitMs = body.wait_ms
    b.ackUpToSeq = body.ack_up_to


def _fill_ack(b: Any, body: Ack) -> None:
    b.recipientKey = body.recipient_key
    b.upToSeq = body.up_to_seq


def _fill_pong(b: Any, body: Pong) -> None:
    b.version = body.version
    b.timeMs = body.time_ms


def _fill_key_package_fetched(b: Any, body: KeyPackageFetched) -> None:
    b.package = body.package
    b.lastResort = body.last_resort


def _fill_enqueued(b: Any, body: Enqueued) -> None:
    lst = b.init("seqs", len(body.seqs))
    for i, seq in enumerate(body.seqs):
        lst[i] = seq


def _fill_fetched(b: Any, body: Fetched) -> None:
    lst = b.init("messages", len(body.messages))
    for i, msg in enumerate(body.messages):
        lst[i].seq = msg.seq
        lst[i].messageId = msg.message_id
        lst[i].payload = msg.payload
    b.expiredCount = body.expired_count
    b.expiredUpToSeq = body.expired_up_to_seq


def _fill_stats_answer(b: Any, body: StatsAnswer) -> None:
    b.messages = body.messages
    b.bytes = body.bytes
    b.keyPackages = body.key_packages


def _fill(union: Any, name: str, fill: Callable[[Any, Any], None] | None, body: Any) -> None:
    if fill is None:
        setattr(union, name, None)  # a Void member
    else:
        fill(union.init(name), body)


def encode_request(request_id: int, body: Request) -> bytes:
    """Encode one request envelope (unpacked Cap'n Proto, ready for a frame).

    Raises:
        ProtocolError: a field is out of range (e.g. a negative sequence number).
    """
    try:
        msg = _Envelope.new_message(requestId=request_id)
        kind = _kind_of(body, _BY_REQUEST)
        _fill(msg.init("request"), kind.name, kind.fill_request, body)
        return bytes(msg.to_bytes())
    except TypeError:
        raise
    except Exception as exc:  # capnp raises KjException/ValueError/OverflowError on bad values
        raise ProtocolError("cannot encode request", ErrorCode.INVALID) from exc


def encode_answer(request_id: int, body: Response | ErrorResponse) -> bytes:
    """Encode one response or error envelope.

    Raises:
        ProtocolError: a field is out of range.
    """
    try:
        msg = _Envelope.new_message(requestId=request_id)
        if isinstance(body, ErrorResponse):
            err = msg.init("error")
            err.code = int(body.code)
            err.detail = body.detail
        else:
            kind = _kind_of(body, _BY_ANSWER)
            _fill(msg.init("response"), kind.answer_name, kind.fill_answer, body)
        return bytes(msg.to_bytes())
    except TypeError:
        raise
    except Exception as exc:
        raise ProtocolError("cannot encode response", ErrorCode.INTERNAL) from exc


# --- decoding ---------------------------------------------------------------------------------


def traversal_limit_for(frame_length: int) -> int:
    """Traversal limit in words for a frame of ``frame_length`` bytes (SRV-FR-03)."""
    return TRAVERSAL_FACTOR * (frame_length // 8) + TRAVERSAL_SLACK_WORDS


def _reader_accessors() -> tuple[Callable[[Any, str], Any], Callable[[Any], str]]:
    """Field and union-tag readers for pycapnp struct readers.

    ``reader.field`` and ``reader.which()`` go through pycapnp's generic attribute lookup (about
    2-3 microseconds each); the methods they wrap are about five times faster, and decoding
    reads a dozen fields per message on both ends of every request. Should a pycapnp release
    drop those methods, the generic forms are used instead: same results, slower.
    """
    reader_type = getattr(getattr(capnp, "lib", None), "capnp", None)
    reader_type = getattr(reader_type, "_DynamicStructReader", None)
    get = getattr(reader_type, "_get", None)
    which = getattr(reader_type, "_which_str", None)
    if callable(get) and callable(which):
        return get, which
    return getattr, lambda reader: str(reader.which())


_get, _which = _reader_accessors()


def _data_list(reader: Any) -> tuple[bytes, ...]:
    return tuple(bytes(item) for item in reader)


def _read_enqueue(e: Any) -> Enqueue:
    commit: CommitEpoch | None = None
    union = _get(e, "commit")
    if _which(union) == "handshake":
        h = _get(union, "handshake")
        commit = CommitEpoch(group_id=bytes(_get(h, "groupId")), epoch=int(_get(h, "epoch")))
    return Enqueue(
        recipients=_data_list(_get(e, "recipients")),
        payload=bytes(_get(e, "payload")),
        message_id=bytes(_get(e, "messageId")),
        commit=commit,
        welcome=bytes(_get(e, "welcome")) or None,
    )


def _read_fetch(f: Any) -> Fetch:
    return Fetch(
        recipient_key=bytes(_get(f, "recipientKey")),
        after_seq=int(_get(f, "afterSeq")),
        limit=int(_get(f, "limit")),
        wait_ms=int(_get(f, "waitMs")),
        ack_up_to=int(_get(f, "ackUpToSeq")),
    )


def _read_fetched(f: Any) -> Fetched:
    return Fetched(
        messages=tuple(
            QueuedMessage(
                seq=int(_get(m, "seq")),
                message_id=bytes(_get(m, "messageId")),
                payload=bytes(_get(m, "payload")),
            )
            for m in _get(f, "messages")
        ),
        expired_count=int(_get(f, "expiredCount")),
        expired_up_to_seq=int(_get(f, "expiredUpToSeq")),
    )


@dataclass(frozen=True)
class RequestKind:
    """One row of :data:`REQUESTS`: a request kind, everywhere it appears.

    Attributes:
        name: the ``NodeRequest`` union member (``schemas/delivery.capnp``).
        request: the request dataclass.
        answer: the dataclass of a successful answer.
        answer_name: the ``NodeResponse`` union member.
        read_request: builds ``request`` from the member's capnp reader (None for a Void member).
        fill_request: writes ``request`` into the member's capnp builder (None: Void member).
        read_answer: builds ``answer`` from its member's capnp reader.
        fill_answer: writes ``answer`` into its member's capnp builder.
        handler: the node's handler, ``"<service>.<method>"`` on ``quicnproto.node.server.Node``,
            called with the connection's session and the request.
    """

    name: str
    request: type[Request]
    answer: type[Response]
    answer_name: str
    read_request: Callable[[Any], Request] | None
    fill_request: Callable[[Any, Any], None] | None
    read_answer: Callable[[Any], Response]
    fill_answer: Callable[[Any, Any], None]
    handler: str

    @property
    def log_name(self) -> str:
        """``name`` in snake case, as the node's logs show it."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()


REQUESTS: tuple[RequestKind, ...] = (
    RequestKind(
        "ping", Ping, Pong, "ping",
        None, None,
        lambda p: Pong(version=str(_get(p, "version")), time_ms=int(_get(p, "timeMs"))),
        _fill_pong,
        "ping",
    ),
    RequestKind(
        "getChallenge", GetChallenge, Challenge, "challenge",
        None, None,
        lambda c: Challenge(nonce=bytes(_get(c, "nonce"))),
        lambda b, body: setattr(b, "nonce", body.nonce),
        "auth.get_challenge",
    ),
    RequestKind(
        "authenticate", Authenticate, Authenticated, "authenticate",
        lambda a: Authenticate(
            identity_key=bytes(_get(a, "identityKey")), signature=bytes(_get(a, "signature"))
        ),
        _fill_authenticate,
        lambda a: Authenticated(identity_key=bytes(_get(a, "identityKey"))),
        lambda b, body: setattr(b, "identityKey", body.identity_key),
        "auth.authenticate",
    ),
    RequestKind(
        "uploadKeyPackage", UploadKeyPackage, KeyPackageUploaded, "uploadKeyPackage",
        lambda u: UploadKeyPackage(
            identity_key=bytes(_get(u, "identityKey")),
            package=bytes(_get(u, "package")),
            last_resort=bool(_get(u, "lastResort")),
        ),
        _fill_upload_key_package,
        lambda u: KeyPackageUploaded(fingerprint=bytes(_get(u, "fingerprint"))),
        lambda b, body: setattr(b, "fingerprint", body.fingerprint),
        "auth.upload_key_package",
    ),
    RequestKind(
        "fetchKeyPackage", FetchKeyPackage, KeyPackageFetched, "fetchKeyPackage",
        lambda f: FetchKeyPackage(identity_key=bytes(_get(f, "identityKey"))),
        lambda b, body: setattr(b, "identityKey", body.identity_key),
        lambda f: KeyPackageFetched(
            package=bytes(_get(f, "package")), last_resort=bool(_get(f, "lastResort"))
        ),
        _fill_key_package_fetched,
        "auth.fetch_key_package",
    ),
    RequestKind(
        "countKeyPackages", CountKeyPackages, KeyPackageCount, "countKeyPackages",
        lambda c: CountKeyPackages(identity_key=bytes(_get(c, "identityKey"))),
        lambda b, body: setattr(b, "identityKey", body.identity_key),
        lambda c: KeyPackageCount(count=int(_get(c, "count"))),
        lambda b, body: setattr(b, "count", body.count),
        "auth.count_key_packages",
    ),
    RequestKind(
        "enqueue", Enqueue, Enqueued, "enqueue",
        _read_enqueue,
        _fill_enqueue,
        lambda e: Enqueued(seqs=tuple(int(s) for s in _get(e, "seqs"))),
        _fill_enqueued,
        "delivery.enqueue",
    ),
    RequestKind(
        "fetch", Fetch, Fetched, "fetch",
        _read_fetch, _fill_fetch, _read_fetched, _fill_fetched,
        "delivery.fetch",
    ),
    RequestKind(
        "ack", Ack, Acked, "ack",
        lambda a: Ack(
            recipient_key=bytes(_get(a, "recipientKey")), up_to_seq=int(_get(a, "upToSeq"))
        ),
        _fill_ack,
        lambda a: Acked(removed=int(_get(a, "removed"))),
        lambda b, body: setattr(b, "removed", body.removed),
        "delivery.ack",
    ),
    RequestKind(
        "countQueue", CountQueue, QueueCount, "countQueue",
        lambda c: CountQueue(recipient_key=bytes(_get(c, "recipientKey"))),
        lambda b, body: setattr(b, "recipientKey", body.recipient_key),
        lambda c: QueueCount(count=int(_get(c, "count"))),
        lambda b, body: setattr(b, "count", body.count),
        "delivery.count_queue",
    ),
    RequestKind(
        "stats", Stats, StatsAnswer, "stats",
        lambda s: Stats(identity_key=bytes(_get(s, "identityKey"))),
        lambda b, body: setattr(b, "identityKey", body.identity_key),
        lambda s: StatsAnswer(
            messages=int(_get(s, "messages")),
            bytes=int(_get(s, "bytes")),
            key_packages=int(_get(s, "keyPackages")),
        ),
        _fill_stats_answer,
        "delivery.stats",
    ),
)  # fmt: skip
"""Every request kind, one row each: adding a request is a row here, its dataclasses, its
schema members, and its handler on the node."""

_BY_NAME = {kind.name: kind for kind in REQUESTS}
_BY_ANSWER_NAME = {kind.answer_name: kind for kind in REQUESTS}
_BY_REQUEST: dict[type, RequestKind] = {kind.request: kind for kind in REQUESTS}
_BY_ANSWER: dict[type, RequestKind] = {kind.answer: kind for kind in REQUESTS}


def kind_of(request: Request) -> RequestKind:
    """The row of ``request``'s type.

    Raises:
        TypeError: ``request`` is not a request of :data:`REQUESTS`.
    """
    return _kind_of(request, _BY_REQUEST)


def _kind_of(body: object, table: dict[type, RequestKind]) -> RequestKind:
    kind = table.get(type(body))
    if kind is None:
        raise TypeError(f"not a request or response: {type(body).__name__}")
    return kind


def _read_request(req: Any) -> Request:
    kind = _BY_NAME.get(_which(req))
    if kind is None:
        raise ProtocolError("unknown request kind", ErrorCode.UNSUPPORTED)
    if kind.read_request is None:
        return kind.request()
    return kind.read_request(_get(req, kind.name))


def _read_response(resp: Any) -> Response:
    name = _which(resp)
    kind = _BY_ANSWER_NAME.get(name)
    if kind is None:
        raise ProtocolError("unknown response kind", ErrorCode.UNSUPPORTED)
    return kind.read_answer(_get(resp, name))


def _error_code(value: int) -> ErrorCode:
    try:
        return ErrorCode(value)
    except ValueError:
        return ErrorCode.INTERNAL


def _decode(frame: bytes, nesting_limit: int, want: str) -> tuple[int, Any]:
    if len(frame) % 8 != 0 or not frame:
        # Unpacked Cap'n Proto is a whole number of words.
        raise ProtocolError("frame is not a whole number of words")
    try:
        with _Envelope.from_bytes(
            frame,
            traversal_limit_in_words=traversal_limit_for(len(frame)),
            nesting_limit=nesting_limit,
        ) as env:
            request_id = int(_get(env, "requestId"))
            kind = _which(env)
            if want == "request":
                if kind != "request":
                    raise ProtocolError("expected a request envelope")
                return request_id, _read_request(_get(env, "request"))
            if kind == "response":
                return request_id, _read_response(_get(env, "response"))
            if kind == "error":
                error = _get(env, "error")
                return request_id, ErrorResponse(
                    code=_error_code(int(_get(error, "code"))),
                    detail=str(_get(error, "detail"))[:200],
                )
            raise ProtocolError("expected a response envelope")
    except ProtocolError:
        raise
    except Exception as exc:  # every capnp failure (KjException, bad UTF-8, ...) is malformed
        raise ProtocolError("malformed Cap'n Proto message") from exc


def decode_request(
    frame: bytes, *, nesting_limit: int = DEFAULT_NESTING_LIMIT
) -> tuple[int, Request]:
    """Decode a request envelope received by the node.

    Returns:
        ``(request_id, request)``.

    Raises:
        ProtocolError: the frame is not a well-formed request envelope.
    """
    request_id, body = _decode(frame, nesting_limit, "request")
    return request_id, body


def decode_answer(
    frame: bytes, *, nesting_limit: int = DEFAULT_NESTING_LIMIT
) -> tuple[int, Response | ErrorResponse]:
    """Decode a response or error envelope received by the client.

    Raises:
        ProtocolError: the frame is not a well-formed response envelope.
    """
    request_id, body = _decode(frame, nesting_limit, "answer")
    return request_id, body


def peek_request_id(frame: bytes) -> int:
    """Best-effort request id of a frame that failed to decode (0 when unreadable)."""
    try:
        with _Envelope.from_bytes(
            frame, traversal_limit_in_words=traversal_limit_for(len(frame)), nesting_limit=4
        ) as env:
            return int(env.requestId)
    except Exception:
        return 0


__all__ = [
    "Ack",
    "AUTH_CONTEXT",
    "AUTH_NONCE_SIZE",
    "Acked",
    "Authenticate",
    "Authenticated",
    "Challenge",
    "CommitEpoch",
    "CountKeyPackages",
    "CountQueue",
    "DEFAULT_NESTING_LIMIT",
    "Enqueue",
    "Enqueued",
    "ErrorResponse",
    "Fetch",
    "FetchKeyPackage",
    "Fetched",
    "GetChallenge",
    "KeyPackageCount",
    "KeyPackageFetched",
    "KeyPackageUploaded",
    "Ping",
    "Pong",
    "QueueCount",
    "QueuedMessage",
    "REQUESTS",
    "Request",
    "RequestKind",
    "Response",
    "SCHEMA_DIR",
    "Stats",
    "StatsAnswer",
    "TRAVERSAL_FACTOR",
    "TRAVERSAL_SLACK_WORDS",
    "UploadKeyPackage",
    "auth_message",
    "decode_answer",
    "decode_request",
    "encode_answer",
    "encode_request",
    "kind_of",
    "peek_request_id",
    "traversal_limit_for",
]
