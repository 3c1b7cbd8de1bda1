"""Authentication and Delivery Services without the network: real SQLite, plain state dicts."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from quicnproto.client.connection import identity_key_of, sign_challenge
from quicnproto.config import NodeConfig
from quicnproto.errors import ErrorCode, ProtocolError
from quicnproto.node.auth_service import (
    AuthService,
    check_key_package,
    identities,
)
from quicnproto.node.delivery_service import DeliveryService
from quicnproto.node.rate_limiter import RateLimiter
from quicnproto.node.store import RequestRefused, open_sqlite_store
from quicnproto.wire import (
    Ack,
    Authenticate,
    CommitEpoch,
    CountQueue,
    Enqueue,
    Fetch,
    FetchKeyPackage,
    Stats,
    StatsAnswer,
    UploadKeyPackage,
    auth_message,
)
from tests.quicnproto.key_packages import make_key_package

NODE_CERT = b"the node's DER certificate"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def login(auth: AuthService, state: dict[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    nonce = auth.get_challenge(state).nonce
    key = identity_key_of(private_key)
    auth.authenticate(state, Authenticate(key, sign_challenge(private_key, NODE_CERT, nonce)))
    return key


@pytest.fixture
async def services(tmp_path: Path):
    store = open_sqlite_store(tmp_path / "n.db")
    config = NodeConfig(enqueue_burst=3, enqueue_rate=1.0)
    clock = Clock()
    yield (
        AuthService(store, config, node_certificate=NODE_CERT, clock=clock),
        DeliveryService(store, config, clock=clock),
        clock,
    )
    await store.aclose()


async def test_authenticate_binds_identity_to_this_state_only(services) -> None:
    auth, _, _ = services
    key = Ed25519PrivateKey.generate()
    state: dict[str, Any] = {}
    other: dict[str, Any] = {}
    identity = login(auth, state, key)
    assert identities(state) == [identity]
    assert identities(other) == []


async def test_challenge_is_single_use(services) -> None:
    auth, _, _ = services
    key = Ed25519PrivateKey.generate()
    state: dict[str, Any] = {}
    nonce = auth.get_challenge(state).nonce
    answer = Authenticate(identity_key_of(key), key.sign(auth_message(NODE_CERT, nonce)))
    auth.authenticate(state, answer)
    with pytest.raises(RequestRefused) as info:
        auth.authenticate(state, answer)
    assert info.value.code == ErrorCode.UNAUTHENTICATED


@pytest.mark.parametrize(("key_len", "sig_len"), [(31, 64), (32, 63), (32, 64)])
async def test_bad_signature_refused(services, key_len: int, sig_len: int) -> None:
    auth, _, _ = services
    state: dict[str, Any] = {}
    auth.get_challenge(state)
    with pytest.raises(RequestRefused) as info:
        auth.authenticate(state, Authenticate(b"\x01" * key_len, b"\x02" * sig_len))
    assert info.value.code == ErrorCode.UNAUTHENTICATED
    assert identities(state) == []


async def test_signature_over_another_nonce_refused(services) -> None:
    auth, _, _ = services
    key = Ed25519PrivateKey.generate()
    state: dict[str, Any] = {}
    auth.get_challenge(state)
    forged = key.sign(auth_message(NODE_CERT, b"\x00" * 32))
    with pytest.raises(RequestRefused):
        auth.authenticate(state, Authenticate(identity_key_of(key), forged))


async def test_identities_per_connection_are_capped(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "n.db")
    auth = AuthService(
        store, NodeConfig(max_identities_per_connection=2), node_certificate=NODE_CERT
    )
    state: dict[str, Any] = {}
    first = Ed25519PrivateKey.generate()
    proven = [login(auth, state, first), login(auth, state, Ed25519PrivateKey.generate())]
    with pytest.raises(RequestRefused) as info:
        login(auth, state, Ed25519PrivateKey.generate())
    assert info.value.code == ErrorCode.QUOTA_EXCEEDED
    assert identities(state) == proven
    # Proving an identity the connection already holds again is fine.
    assert login(auth, state, first) == proven[0]
    assert identities(state) == proven
    await store.aclose()


async def test_answer_signed_for_another_node_is_refused(services) -> None:
    # A node (here "node B") passes our challenge on to its own client, who signs it exactly
    # as its NodeClient does for the certificate it pinned, B's. We must not accept that
    # answer: it would let B act as its clients here (fetch and ack their queues).
    auth, _, _ = services
    victim = Ed25519PrivateKey.generate()
    state: dict[str, Any] = {}
    nonce = auth.get_challenge(state).nonce
    relayed = sign_challenge(victim, b"node B's DER certificate", nonce)
    with pytest.raises(RequestRefused) as info:
        auth.authenticate(state, Authenticate(identity_key_of(victim), relayed))
    assert info.value.code == ErrorCode.UNAUTHENTICATED
    assert identities(state) == []
    # The signature over the bare nonce that the v1 protocol used is refused as well.
    state = {}
    nonce = auth.get_challenge(state).nonce
    bare = victim.sign(b"quicnproto auth v1\x00" + nonce)
    with pytest.raises(RequestRefused):
        auth.authenticate(state, Authenticate(identity_key_of(victim), bare))


def test_client_refuses_to_sign_a_nonce_of_the_wrong_length() -> None:
    key = Ed25519PrivateKey.generate()
    for nonce in (b"", b"n" * 31, b"n" * 33, b"n" * 4096):
        with pytest.raises(ProtocolError):
            sign_challenge(key, NODE_CERT, nonce)
    assert len(sign_challenge(key, NODE_CERT, b"n" * 32)) == 64


async def test_key_package_claims_are_rate_limited_per_requester_and_target(
    tmp_path: Path,
) -> None:
    store = open_sqlite_store(tmp_path / "n.db")
    clock = Clock()
    auth = AuthService(
        store, NodeConfig(key_package_claims=2), node_certificate=NODE_CERT, clock=clock
    )
    alice = Ed25519PrivateKey.generate()
    state: dict[str, Any] = {}
    login(auth, state, Ed25519PrivateKey.generate())
    target = identity_key_of(alice)
    for _ in range(2):
        with pytest.raises(RequestRefused) as info:
            await auth.fetch_key_package(state, FetchKeyPackage(target))
        assert info.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(RequestRefused) as info:
        await auth.fetch_key_package(state, FetchKeyPackage(target))
    assert info.value.code == ErrorCode.RATE_LIMITED
    clock.now += 600.0
    with pytest.raises(RequestRefused) as info:
        await auth.fetch_key_package(state, FetchKeyPackage(target))
    assert info.value.code == ErrorCode.NOT_FOUND
    await store.aclose()


async def test_upload_checks_size_before_parsing(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "n.db")
    auth = AuthService(store, NodeConfig(max_key_package_size=10), node_certificate=NODE_CERT)
    state: dict[str, Any] = {}
    key = login(auth, state, Ed25519PrivateKey.generate())
    with pytest.raises(RequestRefused) as info:
        await auth.upload_key_package(state, UploadKeyPackage(key, b"x" * 11))
    assert info.value.code == ErrorCode.INVALID
    await store.aclose()


def test_check_key_package_accepts_a_real_one_and_binds_identity() -> None:
    alice, bob = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    package = make_key_package(alice)
    now = int(time.time())
    checked = check_key_package(package, identity_key_of(alice), now=now, max_lifetime=86400 * 2)
    assert len(checked.ref) == 32
    assert now < checked.not_after <= now + 86400 * 2
    with pytest.raises(RequestRefused) as info:
        check_key_package(package, identity_key_of(bob), now=now, max_lifetime=86400 * 2)
    assert info.value.code == ErrorCode.INVALID


def test_check_key_package_rejects_tampering_with_the_rule() -> None:
    alice = Ed25519PrivateKey.generate()
    package = bytearray(make_key_package(alice))
    package[-1] ^= 1  # inside the KeyPackage signature
    with pytest.raises(RequestRefused) as info:
        check_key_package(
            bytes(package), identity_key_of(alice), now=int(time.time()), max_lifetime=10**7
        )
    assert info.value.code == ErrorCode.INVALID
    assert "signature" in info.value.detail


def test_check_key_package_without_mls_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mls.key_package", None)
    with pytest.raises(RequestRefused) as info:
        check_key_package(b"kp", b"k" * 32, now=0, max_lifetime=1)
    assert info.value.code == ErrorCode.UNSUPPORTED


def test_rate_limiter_refills_over_time() -> None:
    clock = Clock()
    limiter = RateLimiter(2, 1.0, clock)
    assert limiter.try_take("a") and limiter.try_take("a")
    assert not limiter.try_take("a")
    assert limiter.try_take("b")
    clock.now += 1.0
    assert limiter.try_take("a")
    assert not limiter.try_take("a")


def test_rate_limiter_stays_bounded_under_many_keys() -> None:
    # Claim targets are any 32 bytes a client names: the table must not grow without bound,
    # and a busy key keeps its (drained) bucket while strangers come and go.
    clock = Clock()
    limiter = RateLimiter(2, 0.001, clock, max_keys=8)
    assert limiter.try_take("busy") and limiter.try_take("busy")
    for i in range(1000):
        assert limiter.try_take(i)
        assert len(limiter) <= 8
        if i % 3 == 0:
            assert not limiter.try_take("busy")


async def test_enqueue_needs_sender_and_sane_fields(services) -> None:
    auth, delivery, _ = services
    state: dict[str, Any] = {}
    bob = b"b" * 32
    with pytest.raises(RequestRefused) as info:
        await delivery.enqueue(state, Enqueue((bob,), b"p", b"m"))
    assert info.value.code == ErrorCode.UNAUTHENTICATED
    login(auth, state, Ed25519PrivateKey.generate())
    for bad in (
        Enqueue((), b"p", b"m"),
        Enqueue((b"short",), b"p", b"m"),
        Enqueue((bob, bob), b"p", b"m"),
        Enqueue((bob,), b"p", b""),
        Enqueue((bob,), b"p", b"m" * 65),
        Enqueue((bob,), b"p", b"m", CommitEpoch(b"", 1)),
    ):
        with pytest.raises(RequestRefused) as info:
            await delivery.enqueue(state, bad)
        assert info.value.code == ErrorCode.INVALID


async def test_enqueue_total_fan_out_bytes_are_capped(tmp_path: Path) -> None:
    store = open_sqlite_store(tmp_path / "n.db")
    config = NodeConfig(max_fanout_bytes=1000)
    auth, delivery = (
        AuthService(store, config, node_certificate=NODE_CERT),
        DeliveryService(store, config),
    )
    state: dict[str, Any] = {}
    login(auth, state, Ed25519PrivateKey.generate())
    recipients = tuple(bytes([i]) * 32 for i in range(4))
    with pytest.raises(RequestRefused) as info:
        await delivery.enqueue(state, Enqueue(recipients, b"x" * 251, b"big"))
    assert info.value.code == ErrorCode.INVALID
    assert [await store.count_queue(r) for r in recipients] == [0, 0, 0, 0]
    answer = await delivery.enqueue(state, Enqueue(recipients, b"x" * 250, b"ok"))
    assert answer.seqs == (1, 1, 1, 1)
    await store.aclose()


async def test_enqueue_rate_limited_per_sender(services) -> None:
    auth, delivery, clock = services
    state: dict[str, Any] = {}
    login(auth, state, Ed25519PrivateKey.generate())
    for i in range(3):
        await delivery.enqueue(state, Enqueue((b"b" * 32,), b"p", b"m%d" % i))
    with pytest.raises(RequestRefused) as info:
        await delivery.enqueue(state, Enqueue((b"b" * 32,), b"p", b"m9"))
    assert info.value.code == ErrorCode.RATE_LIMITED
    clock.now += 1.0
    await delivery.enqueue(state, Enqueue((b"b" * 32,), b"p", b"m9"))


async def test_long_poll_wakes_on_enqueue_and_unregisters(services) -> None:
    auth, delivery, _ = services
    sender: dict[str, Any] = {}
    recipient: dict[str, Any] = {}
    login(auth, sender, Ed25519PrivateKey.generate())
    bob = login(auth, recipient, Ed25519PrivateKey.generate())
    got = []

    async def poll() -> None:
        got.append(await delivery.fetch(recipient, Fetch(bob, wait_ms=60_000)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        while delivery.waiting(bob) == 0:
            await trio.sleep(0.001)
        await delivery.enqueue(sender, Enqueue((bob,), b"hello", b"m1"))
    assert [m.payload for m in got[0].messages] == [b"hello"]
    assert delivery.waiting(bob) == 0


async def _poll_until_woken(delivery: DeliveryService, state: dict[str, Any], key: bytes, wake):
    """A long-poll of ``key`` from ``after_seq`` 0, woken by ``await wake()``; its answer."""
    got = []

    async def poll() -> None:
        got.append(await delivery.fetch(state, Fetch(key, wait_ms=60_000)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(poll)
        while delivery.waiting(key) == 0:
            await trio.sleep(0.001)
        await wake()
    return got[0]


async def test_long_poll_answers_with_the_handed_message_without_reading_again(
    services, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth, delivery, _ = services
    sender: dict[str, Any] = {}
    recipient: dict[str, Any] = {}
    login(auth, sender, Ed25519PrivateKey.generate())
    bob = login(auth, recipient, Ed25519PrivateKey.generate())
    reads = []
    fetch_page = delivery.store.fetch_page

    async def counted(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return await fetch_page(*args, **kwargs)

    monkeypatch.setattr(delivery.store, "fetch_page", counted)

    async def wake() -> None:
        await delivery.enqueue(sender, Enqueue((bob,), b"hello", b"m1"))

    answer = await _poll_until_woken(delivery, recipient, bob, wake)
    assert [(m.seq, m.message_id, m.payload) for m in answer.messages] == [(1, b"m1", b"hello")]
    assert len(reads) == 1  # the read before the wait, none after
    # And it is what the store holds.
    stored = await delivery.fetch(recipient, Fetch(bob))
    assert stored.messages == answer.messages


async def test_long_poll_reads_the_store_when_the_handed_seq_is_not_the_next_one(
    services,
) -> None:
    auth, delivery, _ = services
    sender: dict[str, Any] = {}
    recipient: dict[str, Any] = {}
    alice = login(auth, sender, Ed25519PrivateKey.generate())
    bob = login(auth, recipient, Ed25519PrivateKey.generate())

    async def wake() -> None:
        # Seq 1 lands without waking anyone (as when the enqueue that got it resumes after the
        # one that got seq 2): the waiter must not answer with seq 2 alone, or acknowledging it
        # would delete seq 1 unseen.
        await delivery.store.enqueue(alice, (bob,), b"first", b"m1", None)
        await delivery.enqueue(sender, Enqueue((bob,), b"second", b"m2"))

    answer = await _poll_until_woken(delivery, recipient, bob, wake)
    assert [(m.seq, m.payload) for m in answer.messages] == [(1, b"first"), (2, b"second")]


async def test_long_poll_times_out_empty(services) -> None:
    auth, delivery, _ = services
    state: dict[str, Any] = {}
    bob = login(auth, state, Ed25519PrivateKey.generate())
    assert (await delivery.fetch(state, Fetch(bob, wait_ms=10))).messages == ()
    assert delivery.waiting(bob) == 0


async def test_fetch_limit_is_capped_and_ack_needs_ownership(services) -> None:
    auth, delivery, _ = services
    sender: dict[str, Any] = {}
    owner: dict[str, Any] = {}
    login(auth, sender, Ed25519PrivateKey.generate())
    bob = login(auth, owner, Ed25519PrivateKey.generate())
    delivery.config.fetch_max_messages = 2
    for i in range(3):
        await delivery.enqueue(sender, Enqueue((bob,), b"p", b"m%d" % i))
    page = await delivery.fetch(owner, Fetch(bob, limit=50))
    assert [m.seq for m in page.messages] == [1, 2]
    with pytest.raises(RequestRefused) as info:
        await delivery.ack(sender, Ack(bob, 3))
    assert info.value.code == ErrorCode.NOT_FOUND
    assert (await delivery.ack(owner, Ack(bob, 3))).removed == 3


PAGE = 5


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("count", [PAGE - 1, PAGE, PAGE + 1, 10 * PAGE])
async def test_pagination_with_random_acks_skips_and_repeats_nothing(
    tmp_path: Path, count: int, seed: int
) -> None:
    # VALIDATION SRV-DEL-04: N = page-1, page, page+1 and 10 x page, random acks (separate or
    # piggybacked on the next fetch), random requested limits and new mail arriving mid-way.
    rng = random.Random(seed)
    store = open_sqlite_store(tmp_path / "n.db")
    config = NodeConfig(fetch_max_messages=PAGE)
    auth, delivery = (
        AuthService(store, config, node_certificate=NODE_CERT),
        DeliveryService(store, config),
    )
    sender: dict[str, Any] = {}
    owner: dict[str, Any] = {}
    login(auth, sender, Ed25519PrivateKey.generate())
    bob = login(auth, owner, Ed25519PrivateKey.generate())
    enqueued = 0

    async def send() -> None:
        nonlocal enqueued
        enqueued += 1
        answer = await delivery.enqueue(
            sender, Enqueue((bob,), b"p%d" % enqueued, b"m%d" % enqueued)
        )
        (seq,) = answer.seqs
        assert seq == enqueued

    for _ in range(count):
        await send()
    late = rng.randint(0, 3)
    seen: list[int] = []
    cursor = acked = 0
    while True:
        if late and rng.random() < 0.3:
            late -= 1
            await send()
        ack_to = rng.randint(acked, cursor) if rng.random() < 0.5 else 0
        piggyback = rng.random() < 0.5
        if ack_to and not piggyback:
            await delivery.ack(owner, Ack(bob, ack_to))
        limit = rng.choice([0, 1, PAGE - 1, PAGE, 10 * PAGE])
        page = await delivery.fetch(
            owner, Fetch(bob, after_seq=cursor, limit=limit, ack_up_to=ack_to if piggyback else 0)
        )
        acked = max(acked, ack_to)
        assert len(page.messages) <= (PAGE if limit == 0 else min(limit, PAGE))
        if not page.messages:
            if late:
                continue
            break
        seen.extend(m.seq for m in page.messages)
        assert all(m.payload == b"p%d" % m.seq for m in page.messages)
        cursor = page.messages[-1].seq
    assert seen == list(range(1, enqueued + 1))
    # A client that lost its cursor re-reads exactly the unacknowledged tail, in order.
    tail: list[int] = []
    cursor = 0
    while page := (await delivery.fetch(owner, Fetch(bob, after_seq=cursor))).messages:
        tail.extend(m.seq for m in page)
        cursor = page[-1].seq
    assert tail == list(range(acked + 1, enqueued + 1))
    assert (await delivery.ack(owner, Ack(bob, enqueued))).removed == enqueued - acked
    assert (await delivery.fetch(owner, Fetch(bob))).messages == ()
    await store.aclose()


@pytest.fixture
def held_commits(monkeypatch: pytest.MonkeyPatch):
    """Group commits wait in the committer thread until ``release`` is set (set at first;
    ``fail``: they fail as a failed ``COMMIT`` does)."""
    import sqlite3
    import threading

    from quicnproto.node.store import group_commit

    release = threading.Event()
    fail = threading.Event()
    original = group_commit.commit_batch

    def commit_batch(db: Any, conn: Any, batch: Any) -> None:
        release.wait(10)
        if fail.is_set():
            # What the real function does when COMMIT raises: roll back, fail every item.
            group_commit.fail_batch(db, conn, batch, sqlite3.OperationalError("disk I/O error"))
            return
        original(db, conn, batch)

    monkeypatch.setattr(group_commit, "commit_batch", commit_batch)
    release.set()
    return release, fail


async def queue_with_messages(
    tmp_path: Path, count: int
) -> tuple[Any, DeliveryService, dict[str, Any], bytes]:
    """A store and Delivery Service where Bob's queue holds ``count`` messages (seqs 1..)."""
    store = open_sqlite_store(tmp_path / "n.db")
    config = NodeConfig()
    auth = AuthService(store, config, node_certificate=NODE_CERT)
    delivery = DeliveryService(store, config)
    sender: dict[str, Any] = {}
    owner: dict[str, Any] = {}
    login(auth, sender, Ed25519PrivateKey.generate())
    bob = login(auth, owner, Ed25519PrivateKey.generate())
    for i in range(count):
        await delivery.enqueue(sender, Enqueue((bob,), b"p%d" % i, b"m%d" % i))
    return store, delivery, owner, bob


async def test_piggybacked_ack_answers_before_its_commit_and_every_later_request_sees_it(
    tmp_path: Path, held_commits: Any
) -> None:
    release, _ = held_commits
    store, delivery, owner, bob = await queue_with_messages(tmp_path, 4)
    release.clear()
    with trio.fail_after(30):  # held commits never finish: without the fix this hangs
        # Answered while the acknowledgement's commit is still held.
        page = await delivery.fetch(owner, Fetch(bob, after_seq=2, ack_up_to=2))
    assert [m.seq for m in page.messages] == [3, 4]
    # A later fetch from an older cursor does not get the acknowledged ones back.
    page = await delivery.fetch(owner, Fetch(bob, after_seq=0))
    assert [m.seq for m in page.messages] == [3, 4]
    counted: list[int] = []

    async def count() -> None:
        counted.append((await delivery.count_queue(owner, CountQueue(bob))).count)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(count)
        await trio.sleep(0.05)
        assert counted == []  # the count waits for the acknowledgement to land
        release.set()
    assert counted == [2]
    assert store.background_failures == 0
    await store.aclose()
    # Durable: a reopened store no longer holds them.
    reopened = open_sqlite_store(tmp_path / "n.db")
    assert [m.seq for m in await reopened.fetch(bob, 0, 10)] == [3, 4]
    await reopened.aclose()


async def test_a_piggybacked_ack_that_fails_to_commit_loses_nothing(
    tmp_path: Path, held_commits: Any
) -> None:
    _, fail = held_commits
    store, delivery, owner, bob = await queue_with_messages(tmp_path, 3)
    fail.set()
    page = await delivery.fetch(owner, Fetch(bob, after_seq=3, ack_up_to=3))
    assert page.messages == ()
    with trio.fail_after(30):  # a guard against hanging
        while store.background_failures == 0:
            await trio.sleep(0.01)
    fail.clear()
    # The acknowledgement did not happen, so the messages are still there for a client that
    # re-reads from its last durable cursor; the next acknowledgement removes them.
    assert (await delivery.count_queue(owner, CountQueue(bob))).count == 3
    assert [m.seq for m in (await delivery.fetch(owner, Fetch(bob))).messages] == [1, 2, 3]
    assert (await delivery.ack(owner, Ack(bob, 3))).removed == 3
    await store.aclose()


async def test_a_fetch_cancelled_before_its_ack_is_queued_leaves_nothing_pending(
    tmp_path: Path,
) -> None:
    store, delivery, owner, bob = await queue_with_messages(tmp_path, 4)
    with trio.CancelScope() as scope:
        scope.cancel()
        await delivery.fetch(owner, Fetch(bob, after_seq=2, ack_up_to=2))
    assert scope.cancelled_caught
    with trio.fail_after(30):  # a guard against hanging
        # Nothing waits for an acknowledgement that was never queued, and nothing is skipped.
        assert (await delivery.count_queue(owner, CountQueue(bob))).count == 4
        page = await delivery.fetch(owner, Fetch(bob))
    assert [m.seq for m in page.messages] == [1, 2, 3, 4]
    await store.aclose()


async def test_stats_counts_own_queue_and_refuses_another_identity(tmp_path: Path) -> None:
    store, delivery, owner, bob = await queue_with_messages(tmp_path, 3)
    assert await delivery.stats(owner, Stats(bob)) == StatsAnswer(3, len(b"p0p1p2"), 0)
    with pytest.raises(RequestRefused) as info:
        await delivery.stats({}, Stats(bob))
    assert info.value.code == ErrorCode.NOT_FOUND
    await store.aclose()
