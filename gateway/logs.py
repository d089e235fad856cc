"""Structured logs: one logfmt line per event on stderr; never bodies, never secrets.

`log.info("message", extra={"fields": {...}})` renders as
`ts=… level=info logger=gateway.pipeline event=message id=12 result=done folder=VLeads …`.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

# A URL's password (`user:pw@`) and its query values (`?api_key=…`) are credentials often
# enough that every URL the gateway logs or prints has them masked; the rest stays readable.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/@?#]*?):([^/@?#]*)@")
_QUERY_VALUE = re.compile(r"([?&;][^=&;#\s]+=)[^&;#\s]*")
MASK = "***"


def redact_url(url: str) -> str:
    """`https://u:pw@host/p?api_key=k&x=1` → `https://u:***@host/p?api_key=***&x=***`."""
    url = _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", str(url))
    head, sep, rest = url.partition("?")
    return head + (_QUERY_VALUE.sub(lambda m: m.group(1) + MASK, sep + rest) if sep else "")


def redact_urls(text: str) -> str:
    """Every URL inside free text (a log line, an error message) redacted."""
    return _URL.sub(lambda m: redact_url(m.group()), text) if "://" in text else text


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
        return redact_urls(line)


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("watchfiles", "sqlalchemy", "mailparser", "alembic", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # aiosmtpd logs every command line at INFO and AUTH exchanges at DEBUG: the secret intake
    # address (`RCPT TO:<crm+TOKEN@…>`) and credentials would land in the log. The gateway logs
    # each session itself, masked (gateway.smtp), so the library says only what went wrong.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
