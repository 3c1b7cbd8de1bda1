"""Node and client configuration: defaults from VALIDATION §5.7, addresses, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from quicnproto.config import DEFAULT_PORT, ClientConfig, NodeConfig, parse_address
from quicnproto.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:4201", ("0.0.0.0", 4201)),
        ("localhost", ("localhost", DEFAULT_PORT)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::]", ("::", DEFAULT_PORT)),
        (" example.org:1 ", ("example.org", 1)),
    ],
)
def test_parse_address_accepts(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text", ["", ":4201", "host:", "host:x", "host:70000", "host:-1", "[::1", "[::1]x", "h:0"]
)
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_address(text)


def test_parse_address_accepts_port_zero_only_for_binding() -> None:
    assert parse_address("127.0.0.1:0", allow_port_zero=True) == ("127.0.0.1", 0)
    with pytest.raises(ConfigError):
        parse_address("127.0.0.1:0")


def test_node_defaults_are_the_validation_caps() -> None:
    config = NodeConfig()
    assert (config.host, config.port) == ("0.0.0.0", 4201)
    assert config.nesting_limit == 16
    assert config.max_streams_per_connection == 64
    assert config.max_connections_per_address == 16
    assert config.max_connections == 4096
    assert config.request_deadline == 10.0
    assert config.idle_timeout == 60.0
    assert config.max_connection_age == 3600.0
    assert config.queue_max_messages == 10_000
    assert config.queue_max_bytes == 100 * 1024 * 1024
    assert config.key_packages_per_identity == 200
    assert (config.key_package_claims, config.key_package_claim_window) == (10, 600.0)
    assert config.key_package_max_lifetime == 90 * 24 * 3600
    assert config.max_frame_size == 4 * 1024 * 1024


def test_node_paths_default_into_data_dir() -> None:
    config = NodeConfig(data_dir=Path("/srv/q"))
    assert config.cert_path == Path("/srv/q/server-cert.der")
    assert config.key_path == Path("/srv/q/server-key.der")
    assert config.db_path == Path("/srv/q/node.sqlite3")
    explicit = NodeConfig(tls_cert=Path("/c.der"), tls_key=Path("/k.der"), db=Path("/d.db"))
    assert (explicit.cert_path, explicit.key_path, explicit.db_path) == (
        Path("/c.der"),
        Path("/k.der"),
        Path("/d.db"),
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"port": 70000},
        {"max_frame_size": 0},
        {"nesting_limit": -1},
        {"max_wait_ms": -1},
        {"max_connections": 0},
        {"max_connections_per_address": -1},
        {"idle_timeout": 0.0},
        {"log_level": "bogus"},
        {"log_level": "notset"},
    ],
)
def test_node_validate_rejects_out_of_range(overrides: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        NodeConfig(**overrides).validate()  # type: ignore[arg-type]


def test_node_connection_caps_reach_the_transport() -> None:
    limits = NodeConfig(
        max_connections=20_000, max_connections_per_address=10_100, idle_timeout=120.0
    ).transport_limits()
    assert limits.max_connections == 20_000
    assert limits.max_connections_per_address == 10_100
    assert limits.idle_timeout == 120.0


def test_client_defaults() -> None:
    config = ClientConfig()
    assert (config.host, config.port) == ("127.0.0.1", 4201)
    assert config.server_cert == Path("data/server-cert.der")
    assert config.idle_timeout == 60.0


@pytest.mark.parametrize("level", ["debug", "INFO", "Warning", "error", "CRITICAL"])
def test_node_validate_accepts_log_levels_in_any_case(level: str) -> None:
    NodeConfig(log_level=level).validate()


def test_client_validate_accepts_the_defaults() -> None:
    ClientConfig().validate()


@pytest.mark.parametrize(
    "overrides",
    [
        {"port": 0},
        {"port": 65536},
        {"request_timeout": 0.0},
        {"request_timeout": -1.0},
        {"request_timeout": float("nan")},
        {"max_streams_per_connection": 0},
        {"idle_timeout": 0.0},
        {"idle_timeout": float("nan")},
    ],
)
def test_client_validate_rejects_out_of_range(overrides: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        ClientConfig(**overrides).validate()  # type: ignore[arg-type]
