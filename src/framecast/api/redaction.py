"""Keep credentials out of logs: a logged ticket is usable by whoever reads the log until it expires."""

from __future__ import annotations

import logging
import re

_SECRET_QUERY = re.compile(r"\b(ticket|token)=[^&\s\"']+")


def redact(text: str) -> str:
    return _SECRET_QUERY.sub(r"\1=[redacted]", text)


class RedactSecrets(logging.Filter):
    """Blank ticket and token query values out of every record (uvicorn logs WebSocket paths with their query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Attach the filter to the loggers that print request paths."""
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(RedactSecrets())
