"""Client side of the node RPC: one QUIC connection, one stream per request, typed methods.

::

    async with open_client(ClientConfig(host, port, server_cert=path)) as client:
        await client.ping()
        await client.authenticate(identity_private_key)
        seqs = await client.enqueue([bob_key], payload, message_id)
        messages = await client.fetch(my_key, after_seq=0, wait_ms=5000)
        await client.ack(my_key, messages[-1].seq)

The node's certificate is pinned (only ``config.server_cert`` is accepted). Error answers become
typed exceptions: ``NOT_FOUND`` is :class:`NotFoundError`, ``CONFLICT`` and ``STALE`` are
:class:`ConflictError`, every other code is :class:`RemoteError` with ``.code`` set. A request
without an answer in time raises :class:`TransportError`. A connection that cannot be made
raises :class:`TransportError` saying why (:func:`connect_error`): the node's certificate is
not the pinned one, the node refused the connection, or it did not answer in time.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypeVar

import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from quicnproto.config import ClientConfig
from quicnproto.errors import (
    ConflictError,
    ErrorCode,
    NotFoundError,
    ProtocolError,
    RemoteError,
    TransportError,
    TransportReason,
)
from quicnproto.transport.frames import read_frame, write_frame
from quicnproto.transport.quic import (
    ConnectionClosedError,
    QuicClient,
    TransportLimits,
    open_quic_connection,
)
from quicnproto.transport.tls import load_certificate
from quicnproto.wire import (
    AUTH_NONCE_SIZE,
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
    auth_message,
    decode_answer,
    encode_request,
)

R = TypeVar("R")

CRYPTO_ERROR = 0x100
"""QUIC error code of a TLS alert is ``0x100 + alert`` (RFC 9001 §4.8)."""

CONNECTION_REFUSED = 0x2
"""QUIC transport error CONNECTION_REFUSED (RFC 9000 §20.1): the node's transport refuses an
Initial when it holds too many connections, in total or from one address."""

BAD_CERTIFICATE = 42
"""TLS alert bad_certificate (RFC 8446 §6.2): our side rejected the node's certificate, which
with a pinned trust anchor means it is not the pinned one."""

NO_APPLICATION_PROTOCOL = 120
"""TLS alert no_application_protocol (RFC 8446 §6.2, RFC 7301 §3.2): no common ALPN."""

MESSAGE_ID_SIZE = 16
"""Length of the random message ids :meth:`NodeClient.enqueue` picks when given none."""


def identity_key_of(private_key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte identity key of an Ed25519 private key."""
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign_challenge(
    private_key: Ed25519PrivateKey, server_certificate: bytes, nonce: bytes
) -> bytes:
    """Answer the node's challenge ``nonce``: a signature bound to the pinned certificate.

    Raises:
        ProtocolError: the nonce does not have the length the protocol fixes.
    """
    if len(nonce) != AUTH_NONCE_SIZE:
        raise ProtocolError("bad challenge nonce")
    return private_key.sign(auth_message(server_certificate, nonce))


def error_for(answer: ErrorResponse) -> RemoteError:
    """The typed exception for an error answer."""
    if answer.code == ErrorCode.NOT_FOUND:
        return NotFoundError(answer.code, answer.detail)
    if answer.code in (ErrorCode.CONFLICT, ErrorCode.STALE):
        return ConflictError(answer.code, answer.detail)
    return RemoteError(answer.code, answer.detail)


class NodeClient:
    """Typed requests over one QUIC connection (use :func:`open_client`).

    Args:
        quic: the connection.
        config: timeouts and limits.
        server_certificate: the node's pinned DER certificate (challenge answers are bound to it).
    """

    def __init__(self, quic: QuicClient, config: ClientConfig, server_certificate: bytes) -> None:
        self.quic = quic
        self.config = config
        self.server_certificate = server_certificate
        self._ids = itertools.count(1)

    async def request(self, body: Request, *, extra_wait: float = 0.0) -> Response:
        """Send one request on a new stream and return its answer.

        Args:
            body: the request.
            extra_wait: seconds to allow on top of ``request_timeout`` (long-polls).

        Raises:
            RemoteError: (or a subclass) the node answered with an error.
            ProtocolError: the answer was malformed or for another request.
            TransportError: no answer in time, or the connection failed.
        """
        request_id = next(self._ids)
        payload = encode_request(request_id, body)
        try:
            with trio.fail_after(self.config.request_timeout + extra_wait):
                async with await self.quic.open_stream() as stream:
                    await write_frame(stream, payload, end_stream=True)
                    answer_frame = await read_frame(stream, self.config.max_frame_size)
                    # Read the FIN so the stream slot is released (it normally arrived with
                    # the answer, so no extra scheduling round trip is spent on it).
                    if stream.receive_nowait(1) is None:
                        await stream.receive_some(1)
        except trio.TooSlowError as exc:
            raise TransportError(
                "no answer from the node in time", TransportReason.TIMEOUT
            ) from exc
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise TransportError(
                "connection to the node failed", TransportReason.CONNECTION_CLOSED
            ) from exc
        answer_id, answer = decode_answer(answer_frame, nesting_limit=self.config.nesting_limit)
        if isinstance(answer, ErrorResponse):
            raise error_for(answer)
        if answer_id != request_id:
            raise ProtocolError("answer for another request")
        return answer

    async def _expect(self, body: Request, kind: type[R], *, extra_wait: float = 0.0) -> R:
        answer = await self.request(body, extra_wait=extra_wait)
        if not isinstance(answer, kind):
            raise ProtocolError(f"unexpected answer {type(answer).__name__}")
        return answer

    async def ping(self) -> Pong:
        """Round trip to the node; returns its version and clock."""
        answer = await self._expect(Ping(), Pong)
        return answer

    async def authenticate(self, private_key: Ed25519PrivateKey) -> bytes:
        """Prove ``private_key``'s identity on this connection; returns the identity key."""
        challenge = await self._expect(GetChallenge(), Challenge)
        identity = identity_key_of(private_key)
        signature = sign_challenge(private_key, self.server_certificate, challenge.nonce)
        answer = await self._expect(Authenticate(identity, signature), Authenticated)
        return answer.identity_key

    async def upload_key_package(
        self, identity_key: bytes, package: bytes, *, last_resort: bool = False
    ) -> bytes:
        """Publish a KeyPackage; returns its KeyPackageRef (RFC 9420 §5.2)."""
        answer = await self._expect(
            UploadKeyPackage(identity_key, package, last_resort), KeyPackageUploaded
        )
        return answer.fingerprint

    async def fetch_key_package(self, identity_key: bytes) -> KeyPackageFetched:
        """Claim one KeyPackage of ``identity_key`` (:class:`NotFoundError` when none left)."""
        answer = await self._expect(FetchKeyPackage(identity_key), KeyPackageFetched)
        return answer

    async def count_key_packages(self, identity_key: bytes) -> int:
        """Single-use KeyPackages the node still holds for our own ``identity_key``."""
        answer = await self._expect(CountKeyPackages(identity_key), KeyPackageCount)
        return answer.count

    async def enqueue(
        self,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes | None = None,
        *,
        commit: tuple[bytes, int] | None = None,
    ) -> tuple[int, ...]:
        """Queue ``payload`` for every recipient; safe to retry with the same ``message_id``.

        Args:
            recipients: identity keys.
            payload: opaque bytes (an MLSMessage).
            message_id: idempotency key; a random one when None (then a retry is not
                idempotent, so pass one when you may retry).
            commit: ``(group_id, epoch)`` for a Commit: the node accepts the first per epoch
                and answers later ones with :class:`ConflictError` (``STALE``).

        Returns:
            One sequence number per recipient.
        """
        mid = message_id if message_id is not None else secrets.token_bytes(MESSAGE_ID_SIZE)
        epoch = None if commit is None else CommitEpoch(group_id=commit[0], epoch=commit[1])
        answer = await self._expect(Enqueue(tuple(recipients), payload, mid, epoch), Enqueued)
        return answer.seqs

    async def enqueue_commit(
        self,
        recipients: Sequence[bytes],
        payload: bytes,
        message_id: bytes,
        *,
        group_id: bytes,
        epoch: int,
        welcome: bytes | None = None,
    ) -> tuple[int, ...]:
        """Queue a Commit for ``recipients`` and, in the same transaction, its Welcome for the
        holder of each KeyPackageRef it names (RFC 9420 §14; VALIDATION SRV-DEL-06, SRV-KP-06).
        The node accepts the first Commit of ``(group_id, epoch)``; a later one raises
        :class:`ConflictError` (``STALE``) and no Welcome is released. Safe to retry with the
        same ``message_id``.

        Returns:
            One sequence number per recipient, then one per Welcome recipient.
        """
        request = Enqueue(
            tuple(recipients), payload, message_id, CommitEpoch(group_id, epoch), welcome
        )
        answer = await self._expect(request, Enqueued)
        return answer.seqs

    async def fetch(
        self,
        recipient_key: bytes,
        after_seq: int = 0,
        *,
        limit: int = 100,
        wait_ms: int = 0,
        ack_up_to: int = 0,
    ) -> tuple[QueuedMessage, ...]:
        """Messages after ``after_seq`` in our queue (not deleted until acknowledged).

        With ``wait_ms``, the node holds the request until a message arrives or the time passes.
        With ``ack_up_to``, the node deletes our messages up to that sequence number (durably
        in its next group commit; the answer does not wait for it) and never returns them
        again, so a polling loop can acknowledge the previous batch in its next fetch.
        Messages that expired on the node are not among them: :meth:`fetch_page` also tells
        how many were lost.
        """
        answer = await self.fetch_page(
            recipient_key, after_seq, limit=limit, wait_ms=wait_ms, ack_up_to=ack_up_to
        )
        return answer.messages

    async def fetch_page(
        self,
        recipient_key: bytes,
        after_seq: int = 0,
        *,
        limit: int = 100,
        wait_ms: int = 0,
        ack_up_to: int = 0,
    ) -> Fetched:
        """Like :meth:`fetch`, with the gap marker: ``expired_count`` messages after
        ``after_seq`` expired on the node before reaching us (VALIDATION SRV-DEL-07), the last
        of them being ``expired_up_to_seq``. Move the cursor to
        ``max(messages[-1].seq, expired_up_to_seq)``; the gap is reported again until then.
        A long-poll whose only news is a gap still waits for a message (or ``wait_ms``).
        """
        return await self._expect(
            Fetch(recipient_key, after_seq, limit, wait_ms, ack_up_to),
            Fetched,
            extra_wait=wait_ms / 1000.0,
        )

    async def ack(self, recipient_key: bytes, up_to_seq: int) -> int:
        """Delete our messages up to ``up_to_seq``; returns how many were removed."""
        answer = await self._expect(Ack(recipient_key, up_to_seq), Acked)
        return answer.removed

    async def stats(self, identity_key: bytes) -> StatsAnswer:
        """Our own holdings on the node: messages queued, their bytes, KeyPackages left."""
        return await self._expect(Stats(identity_key), StatsAnswer)

    async def count_queue(self, recipient_key: bytes) -> int:
        """Messages waiting in our queue."""
        answer = await self._expect(CountQueue(recipient_key), QueueCount)
        return answer.count


def connect_error(exc: TransportError, config: ClientConfig, *, timed_out: bool) -> TransportError:
    """What a failed connection attempt means, as a :class:`TransportError` saying so.

    The transport reports a close during the handshake as a
    :class:`~quicnproto.transport.quic.ConnectionClosedError` with its QUIC error code:
    ``0x100 + 42`` when our TLS stack rejected the node's certificate (with the pinned one as
    the only trust anchor: a different certificate), ``0x100 + 120`` for no common ALPN, and
    CONNECTION_REFUSED when the node turned the connection away (its total or per-address
    connection limit; the refusal carries no reason phrase). Anything else is returned as is.

    Args:
        exc: what the transport raised.
        config: the node's address, for the message.
        timed_out: the whole ``connect_timeout`` passed without a handshake.
    """
    where = f"{config.host}:{config.port}"
    code = exc.error_code if isinstance(exc, ConnectionClosedError) else None
    if code == CRYPTO_ERROR + BAD_CERTIFICATE:
        return TransportError("the node's certificate does not match the pinned one")
    if code == CRYPTO_ERROR + NO_APPLICATION_PROTOCOL:
        return TransportError(f"the node at {where} does not speak {config.alpn}")
    if code is not None and CRYPTO_ERROR <= code < CRYPTO_ERROR + 0x100:
        return TransportError(f"TLS handshake with {where} failed (alert {code - CRYPTO_ERROR})")
    if code == CONNECTION_REFUSED:
        return TransportError(
            f"the node at {where} refused the connection: too many connections"
            " (in total or from this address)"
        )
    if timed_out and code is None:
        return TransportError(
            f"no answer from {where} within {config.connect_timeout:g} s (handshake timed out)"
        )
    return exc


@asynccontextmanager
async def open_client(config: ClientConfig) -> AsyncIterator[NodeClient]:
    """Connect to a node, pinning its certificate.

    Raises:
        ConfigError: a bad configuration (:meth:`ClientConfig.validate`), or the pinned
            certificate file is missing or malformed.
        TransportError: the connection cannot be established; the message says why
            (:func:`connect_error`).
    """
    config.validate()
    certificate = await trio.to_thread.run_sync(load_certificate, config.server_cert)
    limits = TransportLimits(
        max_streams_per_connection=config.max_streams_per_connection,
        handshake_timeout=config.connect_timeout,
        idle_timeout=config.idle_timeout,
    )
    connection = open_quic_connection(
        config.host,
        config.port,
        server_certificate=certificate,
        alpn=config.alpn,
        limits=limits,
        backend=config.quic_backend,
    )
    async with AsyncExitStack() as stack:
        started = trio.current_time()
        try:
            quic = await stack.enter_async_context(connection)
        except TransportError as exc:
            timed_out = trio.current_time() - started >= config.connect_timeout
            raise connect_error(exc, config, timed_out=timed_out) from exc
        yield NodeClient(quic, config, certificate)
