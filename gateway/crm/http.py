"""HTTP plumbing shared by every connector that talks to a CRM over HTTP (vtiger, Odoo,
webhook): one httpx client with timeouts, `Retry-After` handling, and the error mapping
DESIGN.md asks for at the boundary.

- Network errors and timeouts → `Retryable`.
- 429 and 5xx → `Retryable`, with `retry_after` from the `Retry-After` header. When the far
  side asks for a short wait (≤ `max_wait` seconds) the request is tried again here, after
  exactly that delay (tenacity), so a briefly busy CRM does not send a whole message back
  through the pipeline's backoff; a long wait is left to the pipeline.
- Other 4xx → `Permanent`, with the CRM's own message (`describe` extracts it from the body).

Connectors never see an httpx exception.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from gateway.errors import Permanent, Retryable
from gateway.logs import redact_url, redact_urls

__all__ = ["HttpClient", "parse_retry_after", "body_message"]

Describe = Callable[[httpx.Response], str]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return max(0.0, (when - current).total_seconds())


def body_message(response: httpx.Response, limit: int = 500) -> str:
    """The most telling short text of an error body: a JSON `message`/`error`, else the text."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:limit] or response.reason_phrase
    if isinstance(data, Mapping):
        for key in ("message", "error", "detail"):
            v = data.get(key)
            if isinstance(v, str) and v:
                return v[:limit]
            if isinstance(v, Mapping) and isinstance(v.get("message"), str):
                return str(v["message"])[:limit]
    return response.text.strip()[:limit]


class _ShortWait(Exception):
    def __init__(self, error: Retryable) -> None:
        super().__init__(str(error))
        self.error = error


class HttpClient:
    """A small synchronous client for one CRM base URL.

    `name` prefixes every error message ("vtiger: HTTP 503 …") so the quarantine reason says
    which system failed.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        max_wait: float = 5.0,
        attempts: int = 3,
        describe: Describe = body_message,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.max_wait = max_wait
        self.attempts = max(1, attempts)
        self.describe = describe
        # A query in the configured URL (`?api_key=…`) goes out as default parameters: httpx
        # would otherwise append the base URL's trailing "/" to the query's last value.
        url = httpx.URL(base_url)
        self._client = httpx.Client(
            base_url=url.copy_with(query=None),
            params=url.params,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": "crm-mail-gateway", **dict(headers or {})},
            follow_redirects=False,
            transport=transport,
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request; a 2xx/3xx response comes back, everything else raises."""

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return exc.error.retry_after or 0.0 if isinstance(exc, _ShortWait) else 0.0

        retrying = Retrying(
            retry=retry_if_exception_type(_ShortWait),
            wait=wait,
            stop=stop_after_attempt(self.attempts),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(method, url, **kwargs)
        except _ShortWait as e:
            raise e.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, url, **kwargs)
        except httpx.TimeoutException as e:  # messages reach logs and quarantine reasons: no credentials
            raise Retryable(
                f"{self.name}: timed out talking to {redact_url(str(self._client.base_url))} ({type(e).__name__})"
            ) from None
        except httpx.TransportError as e:
            raise Retryable(
                f"{self.name}: cannot reach {redact_url(str(self._client.base_url))}: {redact_urls(str(e))}"
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            after = parse_retry_after(response.headers.get("Retry-After"))
            error = Retryable(f"{self.name}: HTTP {status}: {self.describe(response)}", retry_after=after)
            if after is not None and after <= self.max_wait:
                raise _ShortWait(error)
            raise error
        if status >= 400:
            raise Permanent(f"{self.name}: HTTP {status}: {self.describe(response)}")
        return response

    def close(self) -> None:
        self._client.close()
