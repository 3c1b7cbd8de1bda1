"""The QUIC core the transport, node and CLI tests drive: ``QUICNPROTOCHAT_QUIC_BACKEND``.

Unset, it is ``aioquic`` (the reference). ``python3 tasks.py test`` runs the transport, node and
CLI tests a second time with ``QUICNPROTOCHAT_QUIC_BACKEND=qh3`` when qh3 is installed. The same
variable is the default of the command line's ``--quic-backend``, so the ``quicnproto``
subprocesses that the CLI tests start use the same core as the in-process node or client.
"""

from __future__ import annotations

import os

import pytest

from quicnproto.transport.quic import backends
from quicnproto.transport.quic.backends import QuicBackend

ENV = "QUICNPROTOCHAT_QUIC_BACKEND"

TEST_BACKEND = QuicBackend(os.environ.get(ENV, QuicBackend.AIOQUIC.value))
"""The backend every in-process server and client of the e2e tests uses."""


def backend_core() -> backends.QuicCore:
    """The adapter module of :data:`TEST_BACKEND`."""
    return backends.load(TEST_BACKEND)


aioquic_client_meets_the_server = pytest.mark.skipif(
    TEST_BACKEND is QuicBackend.QH3,
    reason="drives an aioquic client (its handshake or loss recovery is what the test shapes), "
    "and without a Retry a qh3 2.1 server fails the handshake of an aioquic 1.7 client: its "
    "anti-amplification credit counts the Initial packet, not aioquic's zero-padded datagram "
    "('packet builder capacity exhausted', docs/dependencies.md)",
)
"""For tests that need an aioquic client against the server under test."""
