"""Client crash safety: ``send`` and ``recv --follow`` SIGKILLed at random moments.

After every crash the next command picks up where the state file says: nothing sent is lost
(the outbox resends it with the same message id), nothing received is shown twice (the cursor
and the history move in the transaction that applied the message), and the group still works.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import trio

from .cli_harness import Cli
from .node_harness import ROOT, running_node

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CYCLES = 20


async def _killed_at_random(cli: Cli, rng: random.Random, window: float, *args: str) -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "quicnproto", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=cli.env(),
    )
    # anywhere from before the imports finish to after the command is done
    await trio.sleep(rng.uniform(0.0, window))
    process.kill()
    await process.wait()


async def test_send_and_recv_killed_at_random_lose_and_repeat_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261204)
    # Every killed client leaves its connection open on the node until the idle timeout: all
    # of them come from 127.0.0.1, so the per-address cap is raised to fit the 40 kills.
    async with running_node(tmp_path / "node", max_connections_per_address=128) as node:
        cli = Cli(f"127.0.0.1:{node.port}", node.config.cert_path, tmp_path / "clients")
        cli.home.mkdir()
        alice_key = await cli.register("alice")
        bob = await cli.register("bob")
        alice, bob_state = str(cli.state("alice")), str(cli.state("bob"))
        await cli.run("create-group", "--state", alice, "--group-id", "g")
        await cli.run("invite", "--state", alice, "--peer-key", bob)
        started = trio.current_time()
        await cli.run("join", "--state", bob_state)
        # The kill window spans one whole command as this machine runs it now (1.5 s when
        # idle): on a busy machine a fixed window would kill every command before it did
        # anything, and the test would prove nothing.
        window = max(1.5, 1.5 * (trio.current_time() - started))
        for cycle in range(CYCLES):
            await _killed_at_random(
                cli, rng, window, "send", "--state", alice, "--msg", f"m{cycle}"
            )
            await _killed_at_random(cli, rng, window, "recv", "--follow", "--state", bob_state)
        # the next commands of each side finish what the crashes interrupted
        await cli.run("recv", "--state", alice)
        await cli.run("recv", "--state", bob_state)
        sent = [r["text"] for r in await cli.history("alice") if r["sender"] == alice_key]
        got = [r["text"] for r in await cli.history("bob")]
        # some sends got through before their kill (else the test proves nothing)
        assert sent
        assert len(set(sent)) == len(sent)
        # nothing lost, nothing twice
        assert Counter(got) == Counter(sent)
        # the group still works both ways
        await cli.run("send", "--state", alice, "--msg", "after the storm")
        records = await cli.json("recv", "--state", bob_state)
        assert [r["text"] for r in records if r["kind"] == "message"] == ["after the storm"]
        await cli.run("send", "--state", bob_state, "--msg", "all good")
        records = await cli.json("recv", "--state", alice)
        assert [r["text"] for r in records if r["kind"] == "message"] == ["all good"]
        a, b = await cli.group_info("alice"), await cli.group_info("bob")
        assert a["epoch_authenticator"] == b["epoch_authenticator"]
