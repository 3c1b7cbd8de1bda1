"""``python -m quicnproto``: the command line (see :mod:`quicnproto.cli`)."""

from __future__ import annotations

from quicnproto.cli import main

if __name__ == "__main__":
    main()
