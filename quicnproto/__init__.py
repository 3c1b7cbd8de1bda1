"""quicnproto: end-to-end encrypted group messaging over QUIC.

A pure-Python MLS library lives in ``mls``; this package holds the Trio node, its client and the
command line. Entry points: :func:`quicnproto.node.server.serve` (the node),
:func:`quicnproto.client.connection.open_client` (a client) and ``python -m quicnproto``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
