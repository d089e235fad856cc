"""Structured logs: one logfmt line per event on stderr; never bodies, never secrets.

`log.info("message", extra={"fields": {...}})` renders as
`ts=… level=info logger=gateway.pipeline event=message id=12 result=done folder=VLeads …`.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        parts.update(getattr(record, "fields", {}) or {})
        line = " ".join(f"{k}={_quote(v)}" for k, v in parts.items())
        if record.exc_info:
            line += " traceback=" + _quote(self.formatException(record.exc_info))
        return line


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("watchfiles", "sqlalchemy", "mailparser", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # aiosmtpd logs every command line at INFO and AUTH exchanges at DEBUG: the secret intake
    # address (`RCPT TO:<crm+TOKEN@…>`) and credentials would land in the log. The gateway logs
    # each session itself, masked (gateway.smtp), so the library says only what went wrong.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
