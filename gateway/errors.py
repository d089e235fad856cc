"""The gateway's exception tree.

Every layer raises one of these so the pipeline can decide without knowing the library
underneath: a `Retryable` failure (network, timeout, HTTP 429/5xx, a locked database) is
tried again later with backoff and nothing is tagged meanwhile; a `Permanent` one (the CRM
rejects the data, a message nothing can parse) quarantines the message with the reason.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A bad config file; `problems` holds one `FILE:LINE:COL: message` line each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class RuleError(GatewayError):
    """Invalid rule files; `problems` holds one `FILE:LINE:COL: message` line each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class Retryable(GatewayError):
    """A failure that may pass: try the whole message again later.

    `retry_after` (seconds) is the delay the far side asked for, when it said one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Permanent(GatewayError):
    """A failure that will not pass by waiting: quarantine with this reason."""


class UnparseableMessage(Permanent):
    """No parser could make sense of the bytes; they are kept and the message quarantined."""


class NotFound(Permanent):
    """What was asked for does not exist (no such message, record, user)."""


class NotAllowed(Permanent):
    """The person asking may not see or do this (another person's mailbox, a record they cannot see)."""


class Conflict(Permanent):
    """The thing is not in a state that allows this now (a message not in review, not quarantined)."""


class NotSupported(Permanent):
    """The configured backend cannot do this (e.g. a record search on a CRM without one)."""
