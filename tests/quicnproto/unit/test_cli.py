"""The CLI's surface: switches in help, ``--version``, environment variables, exit codes."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from quicnproto import __version__
from quicnproto.cli import EXIT_CODES, app, exit_code
from quicnproto.client.connection import connect_error
from quicnproto.config import ClientConfig
from quicnproto.errors import ConfigError, StoreError, TransportError, sole_exception
from quicnproto.transport.quic import ConnectionClosedError

runner = CliRunner()
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]


def test_version_option_prints_the_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == __version__


@pytest.mark.parametrize("command", COMMANDS)
def test_boolean_options_show_as_plain_switches(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    typed_flags = [
        line for line in result.output.splitlines() if "<bool>" in line and "--help" not in line
    ]
    assert typed_flags == []


def test_serve_help_lists_log_json_as_a_switch_and_the_data_dir_variable() -> None:
    result = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert "QUICNPROTOCHAT_DATA_DIR" in result.output
    (line,) = [line for line in result.output.splitlines() if "--log-json" in line]
    assert "<" not in line


@pytest.mark.parametrize(
    "args",
    [
        ["ping", "--timeout", "-1"],
        ["ping", "--timeout", "0"],
        ["ping", "--server", "127.0.0.1:0"],
        ["serve", "--log-level", "bogus"],
        ["serve", "--max-connections", "0"],
        ["serve", "--max-connections-per-address", "0"],
        ["serve", "--idle-timeout", "0"],
        ["serve", "--max-wait-ms", "-1"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_exit_codes_of_the_startup_classes() -> None:
    assert exit_code(ConfigError("x")) == 2
    assert exit_code(TransportError("x")) == 6
    assert exit_code(StoreError("x")) == 7
    assert dict((t.__name__, c) for t, c in EXIT_CODES)["QuicnprotoError"] == 1


def test_sole_exception_unwraps_nested_groups_of_one() -> None:
    cause = StoreError("x")
    assert sole_exception(ExceptionGroup("a", [ExceptionGroup("b", [cause])])) is cause
    two = ExceptionGroup("a", [cause, ConfigError("y")])
    assert sole_exception(two) is two


CONFIG = ClientConfig(host="node.example", port=4201)


@pytest.mark.parametrize(
    ("exc", "timed_out", "message"),
    [
        (
            ConnectionClosedError("connection closed (error code 298)", 0x100 + 42),
            False,
            "the node's certificate does not match the pinned one",
        ),
        (
            ConnectionClosedError("connection closed (error code 2)", 0x2),
            False,
            "the node at node.example:4201 refused the connection: too many connections"
            " (in total or from this address)",
        ),
        (
            ConnectionClosedError("connection closed (error code 376)", 0x100 + 120),
            False,
            "the node at node.example:4201 does not speak quicnproto/1",
        ),
        (
            ConnectionClosedError("connection closed (error code 296)", 0x100 + 40),
            False,
            "TLS handshake with node.example:4201 failed (alert 40)",
        ),
        (
            TransportError("handshake timed out"),
            True,
            "no answer from node.example:4201 within 10 s (handshake timed out)",
        ),
        (TransportError("cannot resolve 'x'"), False, "cannot resolve 'x'"),
    ],
    ids=["pin", "refused", "alpn", "other-alert", "timeout", "other"],
)
def test_connect_error_says_what_happened(
    exc: TransportError, timed_out: bool, message: str
) -> None:
    assert str(connect_error(exc, CONFIG, timed_out=timed_out)) == message
