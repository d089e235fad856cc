"""A small JSON-RPC client for trytond, and the place where its failures become ours.

- One `httpx.Client` (keep-alive, thread-safe) and one session shared by every worker; a
  session the server forgot (HTTP 401/403 after login) is renewed once, under a lock.
- Every HTTP request is counted in `requests` (login included): the benchmark reports it.
- Failures leave as `Retryable` (cannot connect, timeout, HTTP 429/5xx, 423 locked, a server
  crash) or `Permanent` (wrong credentials, no such database, other 4xx, Tryton's UserError
  and UserWarning — with Tryton's own message).
- HTTP 429: a `Retry-After` of at most `max_wait` seconds (default 10) is waited out here, up to
  three times, with tenacity; a longer one, or none, raises `Retryable(retry_after=…)` at once
  so the pipeline reschedules the message instead of holding a worker.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import tenacity

from gateway.crm.http import parse_retry_after
from gateway.errors import Permanent, Retryable


class _Throttled(Exception):
    def __init__(self, delay: float, message: str) -> None:
        super().__init__(message)
        self.delay = delay


def _encode(o: Any) -> Any:
    if isinstance(o, bytes):
        return {"__class__": "bytes", "base64": base64.b64encode(o).decode()}
    if isinstance(o, Decimal):
        return {"__class__": "Decimal", "decimal": str(o)}
    if isinstance(o, datetime):
        return {
            "__class__": "datetime",
            "year": o.year,
            "month": o.month,
            "day": o.day,
            "hour": o.hour,
            "minute": o.minute,
            "second": o.second,
            "microsecond": o.microsecond,
        }
    raise TypeError(f"cannot send {type(o).__name__} to Tryton")


def _decode(d: dict[str, Any]) -> Any:
    cls = d.get("__class__")
    if cls == "bytes":
        return base64.b64decode(d["base64"])
    if cls == "Decimal":
        return Decimal(d["decimal"])
    if cls == "datetime":
        return datetime(d["year"], d["month"], d["day"], d["hour"], d["minute"], d["second"], d.get("microsecond", 0))
    return d


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


class TrytonRpc:
    """`TrytonRpc(url, database, username, password).call("model.party.party.search_read", …)`."""

    def __init__(
        self,
        url: str,
        database: str,
        username: str,
        password: str,
        *,
        timeout: float = 30.0,
        company: int | None = None,
        max_wait: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not database:
            raise Permanent("crm.database: the Tryton database name is required")
        if not username or password is None:
            raise Permanent("crm.username and crm.password are required for Tryton")
        self.base = url.rstrip("/") + "/"
        self.database = database
        self.username = username
        self._password = password
        self.company = company
        self.max_wait = max_wait
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout, headers={"Content-Type": "application/json"})
        self._timeout = timeout
        self._lock = threading.Lock()
        self._auth: str | None = None
        self.context: dict[str, Any] = {}
        self.requests = 0
        self._count_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"{self.base}{self.database}/rpc/"

    # -- session -----------------------------------------------------------------------

    def login(self) -> None:
        with self._lock:
            self._login()

    def _login(self) -> None:
        try:
            result = self._post("common.db.login", [self.username, {"password": self._password}, "en"], auth=None)
        except Permanent as e:
            raise Permanent(
                f"Tryton refused the login of {self.username!r} on database {self.database!r} at {self.base}: {e}"
            ) from None
        uid, key = result[0], result[1]
        self._auth = "Session " + base64.b64encode(f"{self.username}:{uid}:{key}".encode()).decode()
        context = self._post("model.res.user.get_preferences", [True, {}], auth=self._auth)
        if self.company is not None:
            context["company"] = self.company
            context["companies"] = [self.company]
        self.context = context

    def call(self, method: str, *params: Any) -> Any:
        """Call `method` with the session's context appended (Tryton wants it last)."""
        for attempt in (1, 2):
            auth = self._auth
            if auth is None:
                with self._lock:
                    if self._auth is None:
                        self._login()
                    auth = self._auth
            try:
                return self._post(method, [*params, self.context], auth=auth)
            except _SessionExpired:
                with self._lock:
                    if self._auth == auth:
                        self._auth = None
                if attempt == 2:
                    raise Permanent(f"Tryton keeps refusing the session of {self.username!r}") from None
        raise AssertionError("unreachable")

    # -- one request ---------------------------------------------------------------------

    def _post(self, method: str, params: list[Any], auth: str | None) -> Any:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Throttled),
            wait=lambda state: state.outcome.exception().delay,  # type: ignore[union-attr]
            stop=tenacity.stop_after_attempt(4),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._post_once, method, params, auth)
        except _Throttled as e:
            raise Retryable(str(e), retry_after=e.delay) from None

    def _post_once(self, method: str, params: list[Any], auth: str | None) -> Any:
        body = json.dumps({"id": 1, "method": method, "params": params}, default=_encode, separators=(",", ":"))
        headers = {"Authorization": auth} if auth else {}
        with self._count_lock:
            self.requests += 1
        try:
            resp = self._http.post(self.endpoint, content=body.encode(), headers=headers)
        except httpx.TimeoutException:
            raise Retryable(f"Tryton at {self.base} did not answer {method} within {self._timeout:g} s") from None
        except httpx.HTTPError as e:
            raise Retryable(f"cannot reach Tryton at {self.base}: {e or type(e).__name__}") from None
        return self._result(method, resp, auth)

    def _result(self, method: str, resp: httpx.Response, auth: str | None) -> Any:
        code = resp.status_code
        if code == 429:
            delay = parse_retry_after(resp.headers.get("Retry-After"))
            message = f"Tryton is rate limiting ({method}): HTTP 429" + (
                f", retry after {delay:g} s" if delay is not None else ""
            )
            if delay is not None and delay <= self.max_wait:
                raise _Throttled(delay, message)
            raise Retryable(message, retry_after=delay)
        if code in (401, 403) and auth is not None:
            raise _SessionExpired()
        if code == 401:
            raise Permanent("wrong user name or password")
        if code == 404 and method == "common.db.login":
            raise Permanent(f"no database {self.database!r} on this server")
        if code == 423 or code >= 500:
            raise Retryable(
                f"Tryton answered {method} with HTTP {code}: {_snippet(resp.text)}",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            )
        if code >= 400:
            raise Permanent(f"Tryton refused {method}: HTTP {code}: {_snippet(resp.text)}")
        try:
            data = json.loads(resp.content, object_hook=_decode)
        except ValueError:
            raise Retryable(f"Tryton answered {method} with something that is not JSON: {_snippet(resp.text)}") from None
        if "error" in data and data["error"]:
            raise _error(method, data["error"])
        return data.get("result")

    def close(self) -> None:
        self._http.close()


class _SessionExpired(Exception):
    pass


def _error(method: str, error: Any) -> Exception:
    """Tryton's error payload: `["UserError", [message, description, domain]]` and its kin, or
    `[str(exception), traceback]` for anything the server did not expect."""
    kind = error[0] if isinstance(error, list) and error else str(error)
    args = error[1] if isinstance(error, list) and len(error) > 1 else ""
    if kind in ("UserError", "UserWarning"):
        parts = args if isinstance(args, list) else [args]
        if kind == "UserWarning":
            parts = parts[1:]
        text = " — ".join(str(p) for p in parts[:2] if p)
        return Permanent(f"Tryton refused {method}: {text}")
    if kind == "ConcurrencyException":
        return Retryable(f"Tryton: {args}")
    if kind == "LoginException":
        return Permanent(f"Tryton wants another login step ({args}); use a password login")
    # an exception the server did not expect: like an HTTP 500, it may pass (a locked database)
    return Retryable(f"Tryton failed on {method}: {_snippet(str(kind))}")
