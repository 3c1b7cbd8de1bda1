"""The QUIC core the transport, node and CLI tests drive: ``QUICNPROTOCHAT_QUIC_BACKEND``.

Unset, it is ``aioquic`` (the reference). ``python3 tasks.py test`` runs the transport, node and
CLI tests a second time with ``QUICNPROTOCHAT_QUIC_BACKEND=qh3`` when qh3 is installed. The same
variable is the default of the command line's ``--quic-backend``, so the ``quicnproto``
subprocesses that the CLI tests start use the same core as the in-process node or client.
"""

from __future__ import annotations

import os

from quicnproto.transport.quic import backends
from quicnproto.transport.quic.backends import QuicBackend

ENV = "QUICNPROTOCHAT_QUIC_BACKEND"

TEST_BACKEND = QuicBackend(os.environ.get(ENV, QuicBackend.AIOQUIC.value))
"""The backend every in-process server and client of the e2e tests uses."""


def backend_core() -> backends.QuicCore:
    """The adapter module of :data:`TEST_BACKEND`."""
    return backends.load(TEST_BACKEND)
