"""Authentication and Delivery Services without the network: real SQLite, plain state dicts."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from quicnproto.client.connection import identity_key_of
from quicnproto.config import NodeConfig
from quicnproto.errors import ErrorCode
from quicnproto.node.auth_service import (
    AuthService,
    RateLimiter,
    challenge_message,
    check_key_package,
    identities,
)
from quicnproto.node.delivery_service import DeliveryService
from quicnproto.node.store import RequestRefused, open_sqlite_store
from quicnproto.wire import (
    Ack,
    Authenticate,
    CommitEpoch,
    Enqueue,
    Fetch,
    FetchKeyPackage,
    UploadKeyPackage,
)
from tests.quicnproto.key_packages import make_key_package


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def login(auth: AuthService, state: dict[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    nonce = auth.get_challenge(state).nonce
    key = identity_key_of(private_key)
    auth.authenticate(state, Authenticate(key, private_key.sign(challenge_message(nonce))))
    return key


@pytest.fixture
async def services(tmp_path: Path):
    store = open_sqlite_store(tmp_path / "n.db")
    config = NodeConfig(enqueue_burst=3, enqueue_rate=1.0)
    clock = Clock()
    yield (
        AuthService(store, config, clock=clock),
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
    answer = Authenticate(identity_key_of(key), key.sign(challenge_message(nonce)))
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
    forged = key.sign(challenge_message(b"\x00" * 32))
    with pytest.raises(RequestRefused):
        auth.authenticate(state, Authenticate(identity_key_of(key), forged))


async def test_key_package_claims_are_rate_limited_per_requester_and_target(
    tmp_path: Path,
) -> None:
    store = open_sqlite_store(tmp_path / "n.db")
    clock = Clock()
    auth = AuthService(store, NodeConfig(key_package_claims=2), clock=clock)
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
    auth = AuthService(store, NodeConfig(max_key_package_size=10))
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
