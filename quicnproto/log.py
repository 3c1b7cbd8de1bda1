"""Structured log events for the whole ``quicnproto`` package.

An event is one log record whose message is the event name and whose ``extra`` carries the
event's fields under ``"fields"``; the node's formatters (``node.server.PlainFormatter`` and
``JsonLinesFormatter``) print them as ``key=value`` or as JSON keys. Callers never pass
payloads, keys or other secrets as fields.
"""

from __future__ import annotations

import logging
from typing import Any

NODE_LOGGER = logging.getLogger("quicnproto.node")
"""Where events go unless the caller names another logger."""


def log_event(
    level: int,
    event: str,
    /,
    *,
    logger: logging.Logger = NODE_LOGGER,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    """Log ``event`` with structured ``fields`` on ``logger`` (callers pass no payloads or keys).

    Args:
        level: a ``logging`` level; nothing is built when the logger would drop it.
        event: the event name, the record's message.
        logger: the logger to write to (the node's by default).
        exc_info: attach the exception being handled (formatters print its type name only).
        fields: the event's structured fields.
    """
    if logger.isEnabledFor(level):
        logger.log(level, event, exc_info=exc_info, extra={"fields": fields})
