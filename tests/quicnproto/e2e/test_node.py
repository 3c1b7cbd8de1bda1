"""The node end to end: real UDP on 127.0.0.1, real QUIC + TLS 1.3, real SQLite in tmp_path."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import trio

from quicnproto.errors import (
    ConflictError,
    ErrorCode,
    NotFoundError,
    RemoteError,
)
from quicnproto.wire import StatsAnswer
from tests.quicnproto.e2e.node_harness import json_logs, new_identity, running_node
from tests.quicnproto.key_packages import make_key_package

pytestmark = pytest.mark.e2e


async def test_ping(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node, node.client() as client:
        pong = await client.ping()
    assert pong.version == "0.1.0"
    assert pong.time_ms > 1_600_000_000_000


async def test_first_start_writes_certificate_key_and_database(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node:
        assert node.config.cert_path.stat().st_size > 0
        assert node.config.key_path.stat().st_mode & 0o777 == 0o600
        assert node.config.db_path.exists()


async def test_key_package_upload_then_fetch_is_single_use(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    package = make_key_package(alice.private_key)
    async with (
        running_node(tmp_path / "node") as node,
        node.client(alice) as a,
        node.client(bob) as b,
    ):
        fingerprint = await a.upload_key_package(alice.key, package)
        assert len(fingerprint) == 32
        assert await a.count_key_packages(alice.key) == 1
        fetched = await b.fetch_key_package(alice.key)
        assert fetched.package == package
        assert fetched.last_resort is False
        with pytest.raises(NotFoundError) as info:
            await b.fetch_key_package(alice.key)
        assert info.value.code == ErrorCode.NOT_FOUND
        assert await a.count_key_packages(alice.key) == 0
        # A consumed KeyPackage cannot be published again (VALIDATION SRV-KP-04).
        with pytest.raises(ConflictError):
            await a.upload_key_package(alice.key, package)


async def test_two_concurrent_fetchers_never_get_the_same_key_package(tmp_path: Path) -> None:
    alice = new_identity()
    packages = [make_key_package(alice.private_key, name=b"kp%d" % i) for i in range(8)]
    got: list[bytes] = []

    async with running_node(tmp_path / "node", key_package_claims=100) as node:
        async with node.client(alice) as a:
            for package in packages:
                await a.upload_key_package(alice.key, package)

        async def fetcher() -> None:
            async with node.client(new_identity()) as client:
                while True:
                    try:
                        fetched = await client.fetch_key_package(alice.key)
                    except NotFoundError:
                        return
                    got.append(fetched.package)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetcher)
            nursery.start_soon(fetcher)
    assert len(got) == len(packages)
    assert sorted(got) == sorted(packages)


async def test_last_resort_key_package_is_reused_not_exhausted(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    single = make_key_package(alice.private_key, name=b"single")
    last = make_key_package(alice.private_key, name=b"last")
    async with (
        running_node(tmp_path / "node") as node,
        node.client(alice) as a,
        node.client(bob) as b,
    ):
        await a.upload_key_package(alice.key, last, last_resort=True)
        await a.upload_key_package(alice.key, single)
        assert (await b.fetch_key_package(alice.key)).package == single
        for _ in range(3):
            fetched = await b.fetch_key_package(alice.key)
            assert (fetched.package, fetched.last_resort) == (last, True)


async def test_key_package_upload_must_match_authenticated_identity(tmp_path: Path) -> None:
    alice, mallory = new_identity(), new_identity()
    alices_package = make_key_package(alice.private_key)
    async with running_node(tmp_path / "node") as node:
        async with node.client(mallory) as m:
            # Mallory uploads Alice's package as her own: the signature key is not hers.
            with pytest.raises(RemoteError) as info:
                await m.upload_key_package(mallory.key, alices_package)
            assert info.value.code == ErrorCode.INVALID
            # Mallory uploads for Alice without being Alice.
            with pytest.raises(RemoteError) as info:
                await m.upload_key_package(alice.key, alices_package)
            assert info.value.code == ErrorCode.UNAUTHENTICATED
        async with node.client() as anonymous:
            with pytest.raises(RemoteError) as info:
                await anonymous.fetch_key_package(alice.key)
            assert info.value.code == ErrorCode.UNAUTHENTICATED


async def test_malformed_and_expired_key_packages_are_refused(tmp_path: Path) -> None:
    alice = new_identity()
    expired = make_key_package(alice.private_key, not_before=1_000, not_after=2_000)
    too_long = make_key_package(alice.private_key, not_after=2**62)
    async with running_node(tmp_path / "node") as node, node.client(alice) as a:
        for bad in (b"\x00\x01garbage", expired, too_long):
            with pytest.raises(RemoteError) as info:
                await a.upload_key_package(alice.key, bad)
            assert info.value.code == ErrorCode.INVALID


async def test_enqueue_fetch_ack_fifo_per_recipient(tmp_path: Path) -> None:
    alice, carol, bob = new_identity(), new_identity(), new_identity()
    async with (
        running_node(tmp_path / "node") as node,
        node.client(alice) as a,
        node.client(carol) as c,
        node.client(bob) as b,
    ):
        expected = []
        for i in range(6):
            sender = a if i % 2 == 0 else c
            (seq,) = await sender.enqueue([bob.key], b"msg %d" % i, b"id-%d" % i)
            assert seq == i + 1
            expected.append(b"msg %d" % i)
        messages = await b.fetch(bob.key)
        assert [m.payload for m in messages] == expected
        assert [m.seq for m in messages] == [1, 2, 3, 4, 5, 6]
        assert [m.message_id for m in messages] == [b"id-%d" % i for i in range(6)]
        # Fetch deletes nothing; paging by after_seq continues where we left off.
        page = await b.fetch(bob.key, after_seq=2, limit=2)
        assert [m.seq for m in page] == [3, 4]
        assert await b.ack(bob.key, 4) == 4
        assert [m.payload for m in await b.fetch(bob.key)] == expected[4:]
        assert await b.count_queue(bob.key) == 2
        # The next poll can acknowledge the previous batch itself.
        assert [m.seq for m in await b.fetch(bob.key, after_seq=5, ack_up_to=5)] == [6]
        assert await b.count_queue(bob.key) == 1
        assert await b.ack(bob.key, 6) == 1
        assert await b.fetch(bob.key) == ()


async def test_fan_out_to_several_recipients(tmp_path: Path) -> None:
    alice, bob, carol = new_identity(), new_identity(), new_identity()
    async with (
        running_node(tmp_path / "node") as node,
        node.client(alice) as a,
        node.client(bob) as b,
        node.client(carol) as c,
    ):
        await a.enqueue([carol.key], b"first", b"m0")
        assert await a.enqueue([bob.key, carol.key], b"commit", b"m1") == (1, 2)
        assert [m.payload for m in await b.fetch(bob.key)] == [b"commit"]
        assert [m.payload for m in await c.fetch(carol.key)] == [b"first", b"commit"]


async def test_enqueue_is_idempotent_by_message_id(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    async with running_node(tmp_path / "node") as node:
        async with node.client(alice) as a, node.client(bob) as b:
            first = await a.enqueue([bob.key], b"hello", b"same-id")
            second = await a.enqueue([bob.key], b"hello", b"same-id")
            assert first == second == (1,)
        # A retry on a new connection (after a lost answer) is still the same message.
        async with node.client(alice) as a, node.client(bob) as b:
            assert await a.enqueue([bob.key], b"hello", b"same-id") == (1,)
            messages = await b.fetch(bob.key)
            assert [(m.seq, m.message_id, m.payload) for m in messages] == [
                (1, b"same-id", b"hello")
            ]
            with pytest.raises(ConflictError) as info:
                await a.enqueue([bob.key], b"different", b"same-id")
            assert info.value.code == ErrorCode.CONFLICT


async def test_first_commit_per_epoch_wins(tmp_path: Path) -> None:
    alice, carol, bob = new_identity(), new_identity(), new_identity()
    async with (
        running_node(tmp_path / "node") as node,
        node.client(alice) as a,
        node.client(carol) as c,
        node.client(bob) as b,
    ):
        await a.enqueue([bob.key], b"commit-a", b"a", commit=(b"group", 5))
        with pytest.raises(ConflictError) as info:
            await c.enqueue([bob.key], b"commit-c", b"c", commit=(b"group", 5))
        assert info.value.code == ErrorCode.STALE
        await c.enqueue([bob.key], b"commit-c6", b"c6", commit=(b"group", 6))
        assert [m.payload for m in await b.fetch(bob.key)] == [b"commit-a", b"commit-c6"]


async def test_long_polling_client_is_woken_by_enqueue(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    result: list[object] = []
    async with (
        running_node(tmp_path / "node") as node,
        node.client(alice) as a,
        node.client(bob) as b,
    ):

        async def long_poll() -> None:
            result.extend(await b.fetch(bob.key, wait_ms=30_000))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(long_poll)
            await trio.sleep(0.3)
            assert result == []
            # The poll asks for 30 s; this guard (not a timing assertion) only keeps a broken
            # wake-up from hanging the suite: the answer must come from the enqueue.
            with trio.fail_after(15):
                await a.enqueue([bob.key], b"wake up", b"w1")
                while not result:
                    await trio.sleep(0.01)
        assert [m.payload for m in result] == [b"wake up"]  # type: ignore[attr-defined]


async def test_long_poll_returns_empty_when_wait_expires(tmp_path: Path) -> None:
    bob = new_identity()
    async with running_node(tmp_path / "node") as node, node.client(bob) as b:
        assert await b.fetch(bob.key, wait_ms=200) == ()


async def test_unauthenticated_fetch_refused_like_a_missing_queue(tmp_path: Path) -> None:
    alice, bob, eve = new_identity(), new_identity(), new_identity()
    nobody = new_identity()
    async with running_node(tmp_path / "node") as node:
        async with node.client(alice) as a:
            await a.enqueue([bob.key], b"for bob only", b"m1")
        errors = []
        async with node.client() as anonymous, node.client(eve) as e:
            for client in (anonymous, e):
                for key in (bob.key, nobody.key):
                    for call in (
                        lambda c=client, k=key: c.fetch(k),
                        lambda c=client, k=key: c.ack(k, 10),
                        lambda c=client, k=key: c.count_queue(k),
                    ):
                        with pytest.raises(NotFoundError) as info:
                            await call()
                        errors.append((info.value.code, info.value.detail))
        # Same error whether the queue holds mail or never existed (VALIDATION SRV-AU-01).
        assert len(set(errors)) == 1
        async with node.client(bob) as b:
            assert [m.payload for m in await b.fetch(bob.key)] == [b"for bob only"]


async def test_unauthenticated_enqueue_refused(tmp_path: Path) -> None:
    bob = new_identity()
    async with running_node(tmp_path / "node") as node, node.client() as anonymous:
        with pytest.raises(RemoteError) as info:
            await anonymous.enqueue([bob.key], b"spam", b"x")
        assert info.value.code == ErrorCode.UNAUTHENTICATED


async def test_authentication_needs_a_fresh_challenge_per_connection(tmp_path: Path) -> None:
    from quicnproto.client.connection import sign_challenge
    from quicnproto.wire import Authenticate, GetChallenge

    alice = new_identity()
    async with running_node(tmp_path / "node") as node:
        async with node.client() as first:
            challenge = await first.request(GetChallenge())
            signature = sign_challenge(
                alice.private_key,
                node.config.cert_path.read_bytes(),
                challenge.nonce,  # type: ignore[union-attr]
            )
        async with node.client() as second:
            # Replaying the answer on another connection fails: no challenge was issued there.
            with pytest.raises(RemoteError) as info:
                await second.request(Authenticate(alice.key, signature))
            assert info.value.code == ErrorCode.UNAUTHENTICATED
            # A wrong signature fails and spends the challenge.
            await second.request(GetChallenge())
            with pytest.raises(RemoteError) as info:
                await second.request(Authenticate(alice.key, b"\x00" * 64))
            assert info.value.code == ErrorCode.UNAUTHENTICATED


async def test_queue_quota_refuses_enqueue(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    async with (
        running_node(tmp_path / "node", queue_max_messages=2) as node,
        node.client(alice) as a,
    ):
        await a.enqueue([bob.key], b"1", b"1")
        await a.enqueue([bob.key], b"2", b"2")
        with pytest.raises(RemoteError) as info:
            await a.enqueue([bob.key], b"3", b"3")
        assert info.value.code == ErrorCode.QUOTA_EXCEEDED


async def test_restarted_node_still_holds_every_unacknowledged_message(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    data_dir = tmp_path / "node"
    async with running_node(data_dir) as node:
        async with node.client(alice) as a, node.client(bob) as b:
            for i in range(5):
                await a.enqueue([bob.key], b"m%d" % i, b"id%d" % i)
            await a.enqueue([bob.key], b"c", b"commit", commit=(b"g", 1))
            assert await b.ack(bob.key, 2) == 2
    async with running_node(data_dir) as node:
        async with node.client(bob) as b, node.client(alice) as a:
            messages = await b.fetch(bob.key)
            assert [(m.seq, m.payload) for m in messages] == [
                (3, b"m2"),
                (4, b"m3"),
                (5, b"m4"),
                (6, b"c"),
            ]
            # Idempotency records and the commit table survived as well.
            assert await a.enqueue([bob.key], b"m4", b"id4") == (5,)
            with pytest.raises(ConflictError):
                await a.enqueue([bob.key], b"c2", b"commit2", commit=(b"g", 1))


async def test_logs_never_contain_payloads_keys_or_key_packages(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    package = make_key_package(alice.private_key)
    payload = b"SECRET-PAYLOAD-7f3a9c"
    with json_logs("DEBUG") as sink:
        async with running_node(tmp_path / "node", log_json=True) as node:
            async with node.client(alice) as a, node.client(bob) as b:
                await a.upload_key_package(alice.key, package)
                await b.fetch_key_package(alice.key)
                await a.enqueue([bob.key], payload, b"mid-1")
                await b.fetch(bob.key)
                with pytest.raises(NotFoundError):
                    await a.fetch(bob.key)
    text = sink.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [entry for entry in lines if entry["event"] == "request"]
    assert {entry["kind"] for entry in requests} >= {
        "get_challenge",
        "authenticate",
        "upload_key_package",
        "fetch_key_package",
        "enqueue",
        "fetch",
    }
    assert all(isinstance(entry["rid"], int) and "request_id" in entry for entry in requests)
    secrets = [payload, package, alice.key, bob.key, package[-64:]]
    for secret in secrets:
        for form in (
            secret.hex(),
            base64.b64encode(secret).decode(),
            repr(secret)[2:-1],
        ):
            assert form[:24] not in text


async def test_queue_of_large_messages_is_fetched_in_pages_that_fit_a_frame(
    tmp_path: Path,
) -> None:
    # Three 1.5 MiB messages are 4.5 MiB together: more than one answer frame may hold. The node
    # pages by bytes too, so the client gets them all, in order, with the default limits.
    alice, bob = new_identity(), new_identity()
    payloads = [bytes([i]) * (3 * 512 * 1024) for i in range(3)]
    async with (
        running_node(tmp_path / "node") as node,
        node.client(alice) as a,
        node.client(bob) as b,
    ):
        for i, payload in enumerate(payloads):
            await a.enqueue([bob.key], payload, b"big-%d" % i)
        got: list[bytes] = []
        cursor = 0
        while page := await b.fetch(bob.key, after_seq=cursor):
            got.extend(m.payload for m in page)
            cursor = page[-1].seq
        assert got == payloads


async def test_stats_reports_own_queue_and_key_packages_left(tmp_path: Path) -> None:
    alice, bob = new_identity(), new_identity()
    packages = [make_key_package(bob.private_key, name=b"kp%d" % i) for i in range(3)]
    async with (
        running_node(tmp_path / "node") as node,
        node.client(alice) as a,
        node.client(bob) as b,
    ):
        for package in packages:
            await b.upload_key_package(bob.key, package)
        await a.enqueue([bob.key], b"12345", b"m1")
        await a.enqueue([bob.key], b"123", b"m2")
        await a.fetch_key_package(bob.key)
        assert await b.stats(bob.key) == StatsAnswer(messages=2, bytes=8, key_packages=2)
        # Only one's own: another identity's holdings are NOT_FOUND, as for fetch.
        with pytest.raises(NotFoundError):
            await a.stats(bob.key)
