"""Choosing the QUIC core: names, the "not installed" error, and what each adapter offers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from quicnproto.config import ClientConfig, NodeConfig
from quicnproto.errors import ConfigError
from quicnproto.transport.quic import backends
from quicnproto.transport.quic.backends import QuicBackend

INSTALLED = [b for b in QuicBackend if backends.is_installed(b)]


def _pretend_missing(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    real = importlib.util.find_spec

    def find_spec(module: str, *args: object) -> object:
        return None if module == name else real(module, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize("backend", INSTALLED, ids=str)
def test_every_installed_adapter_offers_every_member(backend: QuicBackend) -> None:
    core = backends.load(backend)
    missing = [name for name in backends.CORE_MEMBERS if not hasattr(core, name)]
    assert missing == []
    assert {"StreamDataReceived", "HandshakeCompleted"} <= set(vars(core.events))


def test_aioquic_is_always_installed_and_the_default() -> None:
    assert QuicBackend.AIOQUIC in INSTALLED
    assert NodeConfig().quic_backend is QuicBackend.AIOQUIC
    assert ClientConfig().quic_backend is QuicBackend.AIOQUIC


def test_an_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        backends.check_installed("quiche")
    assert "aioquic, qh3" in str(info.value)


def test_a_missing_qh3_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_missing(monkeypatch, "qh3")
    with pytest.raises(ConfigError) as info:
        backends.load(QuicBackend.QH3)
    assert str(info.value) == "qh3 is not installed: pip install quicnproto[qh3]"


def test_node_and_client_configs_check_the_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _pretend_missing(monkeypatch, "qh3")
    node = NodeConfig(data_dir=tmp_path, quic_backend="qh3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pip install quicnproto\\[qh3\\]"):
        node.validate()
    client = ClientConfig(quic_backend="qh3")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pip install quicnproto\\[qh3\\]"):
        client.validate()
    with pytest.raises(ConfigError, match="unknown QUIC backend"):
        ClientConfig(quic_backend="nope").validate()  # type: ignore[arg-type]


def test_a_backend_name_is_normalized_to_the_enum() -> None:
    config = ClientConfig(quic_backend="aioquic")  # type: ignore[arg-type]
    config.validate()
    assert config.quic_backend is QuicBackend.AIOQUIC
