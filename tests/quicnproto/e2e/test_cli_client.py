"""Client commands as real subprocesses against a real node on loopback."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import trio

from .cli_harness import Cli
from .node_harness import drain, free_udp_port, running_node, start_node

pytestmark = pytest.mark.e2e


def _cli(node_port: int, cert: Path, home: Path) -> Cli:
    home.mkdir(parents=True, exist_ok=True)
    return Cli(f"127.0.0.1:{node_port}", cert, home)


@pytest.mark.parametrize("n", [3, 10])
async def test_members_form_a_group_and_everyone_reads_everyone(tmp_path: Path, n: int) -> None:
    async with running_node(tmp_path / "node") as node:
        cli = _cli(node.port, node.config.cert_path, tmp_path / "clients")
        names = [f"m{i}" for i in range(n)]
        keys = {name: await cli.register(name, "--count", "2") for name in names}
        creator = names[0]
        await cli.run("create-group", "--state", str(cli.state(creator)), "--group-id", "club")
        peers = [a for name in names[1:] for a in ("--peer-key", keys[name])]
        await cli.run("invite", "--state", str(cli.state(creator)), *peers)
        for name in names[1:]:
            joined = await cli.json("join", "--state", str(cli.state(name)))
            assert [r["kind"] for r in joined] == ["joined"]
        for name in names:
            await cli.run("send", "--state", str(cli.state(name)), "--msg", f"hi from {name}")
        for name in names:
            await cli.run("recv", "--state", str(cli.state(name)))
        infos = [await cli.group_info(name) for name in names]
        assert {i["epoch"] for i in infos} == {1}
        assert len({i["epoch_authenticator"] for i in infos}) == 1
        assert all(i["members"] == n for i in infos)
        for name in names:
            texts = sorted(r["text"] for r in await cli.history(name))
            assert texts == sorted(f"hi from {other}" for other in names)
            senders = {r["sender"] for r in await cli.history(name)}
            assert senders == set(keys.values())


async def test_the_original_readme_command_lines_work_as_written(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node:
        cli = _cli(node.port, node.config.cert_path, tmp_path / "clients")
        server = cli.server
        env = cli.env()
        del env["QUICNPROTOCHAT_SERVER"]  # the command lines name the server themselves
        alice, bob = str(cli.state("alice")), str(cli.state("bob"))
        run = cli.run
        await run("register-state", "--state", alice, "--server", server, env=env)
        bob_key = (
            (await run("register-state", "--state", bob, "--server", server, env=env))
            .stdout.decode()
            .strip()
        )
        assert len(bob_key) == 64
        alice_key = (await run("whoami", "--state", alice, env=env)).stdout.decode().strip()
        await run("create-group", "--state", alice, "--group-id", "demo", env=env)
        await run(
            "invite",
            "--state",
            alice,
            "--peer-key",
            bob_key,
            "--server",
            server,
            "--ds-server",
            server,
            env=env,
        )
        await run("join", "--state", bob, "--ds-server", server, env=env)
        await run(
            "send",
            "--state",
            alice,
            "--peer-key",
            bob_key,
            "--msg",
            "hello bob",
            "--ds-server",
            server,
            env=env,
        )
        out = (await run("recv", "--state", bob, "--ds-server", server, env=env)).stdout.decode()
        assert "hello bob" in out
        await run(
            "send",
            "--state",
            bob,
            "--peer-key",
            alice_key,
            "--msg",
            "hello alice",
            "--ds-server",
            server,
            env=env,
        )
        out = (await run("recv", "--state", alice, "--ds-server", server, env=env)).stdout.decode()
        assert "hello alice" in out


async def test_a_join_works_after_the_joiner_restarted_between_register_and_join(
    tmp_path: Path,
) -> None:
    # every command is its own process: the KeyPackage keys bob uploaded with register live
    # only in his state file when join runs
    async with running_node(tmp_path / "node") as node:
        cli = _cli(node.port, node.config.cert_path, tmp_path / "clients")
        await cli.register("alice")
        bob = await cli.register("bob", "--passphrase", "bob's secret")
        await cli.run("create-group", "--state", str(cli.state("alice")), "--group-id", "g")
        await cli.run("invite", "--state", str(cli.state("alice")), "--peer-key", bob)
        joined = await cli.json(
            "join", "--state", str(cli.state("bob")), "--passphrase", "bob's secret"
        )
        assert [r["kind"] for r in joined] == ["joined"]


async def test_recv_after_the_node_restarted(tmp_path: Path) -> None:
    port = free_udp_port()
    data = tmp_path / "node"
    cli = _cli(port, data / "server-cert.der", tmp_path / "clients")
    process = await start_node(data, port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, process)
        await cli.register("alice")
        bob = await cli.register("bob")
        await cli.run("create-group", "--state", str(cli.state("alice")), "--group-id", "g")
        await cli.run("invite", "--state", str(cli.state("alice")), "--peer-key", bob)
        await cli.run("join", "--state", str(cli.state("bob")))
        await cli.run("send", "--state", str(cli.state("alice")), "--msg", "kept across restart")
        process.terminate()
        await process.wait()
        nursery.cancel_scope.cancel()
    process = await start_node(data, port)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, process)
        records = await cli.json("recv", "--state", str(cli.state("bob")))
        assert [r["text"] for r in records if r["kind"] == "message"] == ["kept across restart"]
        process.terminate()
        await process.wait()
        nursery.cancel_scope.cancel()


async def test_two_members_committing_at_once_end_in_the_same_epoch(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node:
        cli = _cli(node.port, node.config.cert_path, tmp_path / "clients")
        await cli.register("alice")
        bob = await cli.register("bob")
        await cli.run("create-group", "--state", str(cli.state("alice")), "--group-id", "g")
        await cli.run("invite", "--state", str(cli.state("alice")), "--peer-key", bob)
        await cli.run("join", "--state", str(cli.state("bob")))
        async with trio.open_nursery() as nursery:
            for name in ("alice", "bob"):
                nursery.start_soon(
                    lambda name=name: cli.run("update", "--state", str(cli.state(name)))
                )
        for name in ("alice", "bob"):
            await cli.run("recv", "--state", str(cli.state(name)))
        a, b = await cli.group_info("alice"), await cli.group_info("bob")
        assert a["epoch"] == b["epoch"] == 3
        assert a["epoch_authenticator"] == b["epoch_authenticator"]


# --------------------------------------------------------------------------------------------
# Bad input: one line, a non-zero exit code, the state file byte-identical


def _one_error_line(result: object) -> str:
    stderr = result.stderr.decode()  # type: ignore[attr-defined]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in stderr
    return lines[0]


async def test_bad_input_gives_one_line_and_leaves_the_state_alone(tmp_path: Path) -> None:
    async with running_node(tmp_path / "node") as node:
        cli = _cli(node.port, node.config.cert_path, tmp_path / "clients")
        await cli.register("alice")
        spent = await cli.register("spent", "--count", "1", "--no-last-resort")
        secret = await cli.register("locked", "--passphrase", "right")
        alice = cli.state("alice")
        await cli.run("create-group", "--state", str(alice), "--group-id", "g")
        # spend the only KeyPackage of "spent"
        await cli.run("fetch-key", spent, "--state", str(alice))
        foreign = cli.home / "foreign.state"
        with sqlite3.connect(foreign) as conn:
            conn.execute("create table foo (x)")
        os.chmod(foreign, 0o600)
        corrupt = cli.home / "corrupt.state"
        corrupt.write_bytes(os.urandom(4096))
        os.chmod(corrupt, 0o600)
        dead = f"127.0.0.1:{free_udp_port()}"
        wrong_cert = tmp_path / "other-cert.der"
        async with running_node(tmp_path / "other") as other:
            wrong_cert.write_bytes(other.config.cert_path.read_bytes())
        cases = [
            (alice, ["invite", "--peer-key", "11" * 32], 9),  # unknown peer
            (alice, ["invite", "--peer-key", spent], 9),  # no KeyPackage left
            (alice, ["invite", "--peer-key", "zz"], 2),  # not a key
            (cli.home / "missing.state", ["send", "--msg", "x"], 8),
            (corrupt, ["send", "--msg", "x"], 8),
            (foreign, ["send", "--msg", "x"], 8),
            (cli.state("locked"), ["whoami", "--passphrase", "wrong"], 8),
            (cli.state("locked"), ["whoami"], 8),
            (alice, ["send", "--msg", "x", "--server", dead, "--timeout", "2"], 6),
            (alice, ["send", "--msg", "x", "--server-cert", str(wrong_cert)], 6),
            (alice, ["send", "--msg", "x", "--group-id", "not-held"], 9),
            (alice, ["send", "--msg", "x", "--timeout", "-1"], 2),
        ]
        for state, args, code in cases:
            before = state.read_bytes() if state.exists() else None
            result = await cli.run(args[0], "--state", str(state), *args[1:], check=False)
            assert result.returncode == code, (args, result.stderr)
            _one_error_line(result)
            after = state.read_bytes() if state.exists() else None
            assert before == after, args
        del secret


async def test_concurrent_invites_deliver_exactly_one_welcome_each(tmp_path: Path) -> None:
    # alice and bob invite at the same moment: at most one of their first Commits wins the
    # epoch; the loser's Welcome is never released, its invite is rebuilt on the new epoch,
    # and each invitee finds exactly one Welcome
    async with running_node(tmp_path / "node") as node:
        cli = _cli(node.port, node.config.cert_path, tmp_path / "clients")
        await cli.register("alice")
        bob = await cli.register("bob")
        carol = await cli.register("carol")
        dave = await cli.register("dave")
        await cli.run("create-group", "--state", str(cli.state("alice")), "--group-id", "g")
        await cli.run("invite", "--state", str(cli.state("alice")), "--peer-key", bob)
        await cli.run("join", "--state", str(cli.state("bob")))
        async with trio.open_nursery() as nursery:
            for name, peer in (("alice", carol), ("bob", dave)):
                nursery.start_soon(
                    lambda name=name, peer=peer: cli.run(
                        "invite", "--state", str(cli.state(name)), "--peer-key", peer
                    )
                )
        for name in ("carol", "dave"):
            joined = await cli.json("join", "--state", str(cli.state(name)))
            # one Welcome (the other invite's Commit may follow it, if it came second)
            assert [r["kind"] for r in joined].count("joined") == 1
            assert {r["kind"] for r in joined} <= {"joined", "commit"}
            # nothing else waits: no second Welcome
            again = await cli.run("join", "--state", str(cli.state(name)), "--wait", "0", check=False)
            assert again.returncode == 9
        for name in ("alice", "bob", "carol", "dave"):
            await cli.run("recv", "--state", str(cli.state(name)))
        infos = [await cli.group_info(n) for n in ("alice", "bob", "carol", "dave")]
        assert {i["epoch"] for i in infos} == {3}
        assert len({i["epoch_authenticator"] for i in infos}) == 1
        assert {i["members"] for i in infos} == {4}
