"""Client connection failures that say what happened: pin mismatch, refusal, timeout."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from quicnproto.client.connection import open_client
from quicnproto.config import ClientConfig
from quicnproto.errors import ConfigError, TransportError
from tests.quicnproto.quic_backend import TEST_BACKEND

from .node_harness import running_node

pytestmark = pytest.mark.e2e


async def test_a_certificate_other_than_the_pinned_one_is_named(tmp_path: Path) -> None:
    async with running_node(tmp_path / "a") as node, running_node(tmp_path / "b") as other:
        config = node.client_config(server_cert=other.config.cert_path)
        with pytest.raises(TransportError) as info:
            async with open_client(config):
                pass
    assert str(info.value) == "the node's certificate does not match the pinned one"


async def test_a_refused_connection_says_why(tmp_path: Path) -> None:
    async with running_node(tmp_path / "n", max_connections_per_address=1) as node:
        async with node.client() as first:
            await first.ping()
            with pytest.raises(TransportError) as info:
                async with node.client():
                    pass
    assert str(info.value) == (
        f"the node at 127.0.0.1:{node.port} refused the connection: too many connections"
        " (in total or from this address)"
    )


async def test_a_silent_address_times_out_with_its_own_message(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running_node(tmp_path / "n") as node:
        cert = node.config.cert_path
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        config = ClientConfig(
            host="127.0.0.1",
            port=port,
            server_cert=cert,
            connect_timeout=5.0,
            quic_backend=TEST_BACKEND,
        )
        with pytest.raises(TransportError) as info:
            async with open_client(config):
                pass
    assert str(info.value) == f"no answer from 127.0.0.1:{port} within 5 s (handshake timed out)"


@pytest.mark.parametrize(
    "overrides", [{"port": 0}, {"request_timeout": -1.0}, {"connect_timeout": 0.0}]
)
async def test_invalid_client_configuration_is_refused_before_connecting(
    tmp_path: Path, overrides: dict[str, float]
) -> None:
    config = ClientConfig(server_cert=tmp_path / "absent.der", **overrides)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        async with open_client(config):
            pass
