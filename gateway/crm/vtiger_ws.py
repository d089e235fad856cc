"""The vtiger / vtenext webservice (docs/vtiger.md): `webservice.php` with `getchallenge` →
`login` (accessKey = md5(token + access key)) → `sessionName` on every call, and the VTQL
literals its queries need.

One session is shared by every worker; a session the server forgot is renewed once, under a
lock. Failures leave as `Retryable` (not a webservice answer, a server or database error) or
`Permanent` (credentials refused, anything else the webservice refuses).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from gateway.crm.http import HttpClient
from gateway.errors import Permanent, Retryable

SESSION_CODES = {"INVALID_SESSIONID", "SESSION_EXPIRED", "SESSION_LEFT_IDLE", "AUTHENTICATION_REQUIRED"}
CREDENTIAL_CODES = {"INVALID_USER_CREDENTIALS", "INVALID_AUTH_TOKEN", "AUTHENTICATION_FAILURE", "ACCESSKEY_UNDEFINED"}
TRANSIENT_CODES = {"INTERNAL_SERVER_ERROR", "DATABASE_QUERY_ERROR"}
PAGE = 100  # vtiger answers at most 100 rows per query


def literal(value: str) -> str:
    """A VTQL string literal: quotes doubled; control characters and backslashes refused."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise Permanent(f"refusing a value with control characters in a vtiger query: {value!r}")
    if "\\" in value:
        raise Permanent(f"refusing a backslash in a vtiger query: {value!r}")
    return "'" + value.replace("'", "''") + "'"


def matches(field: str, value: str) -> str:
    """`field = 'value'`; with a backslash in the value, `like` with `%` in its place (the rows
    are filtered exactly afterwards)."""
    if "\\" in value:
        return f"{field} like {literal(value.replace(chr(92), '%'))}"
    return f"{field} = {literal(value)}"


class Webservice:
    """`call(method, operation, params)` on a logged-in session; `query`, `relate` and
    `related` on top of it."""

    def __init__(self, url: str, username: str, access_key: str, *, dialect: str, timeout: float, max_wait: float) -> None:
        self.dialect = dialect
        self.username = username
        self._key = access_key
        self._http = HttpClient(url.rstrip("/") + "/", name=dialect, timeout=timeout, max_wait=max_wait)
        self._lock = threading.Lock()
        self._session: str | None = None
        self.user_id = ""  # the logged-in user's id, known after `login`

    def login(self) -> str:
        with self._lock:
            if self._session:
                return self._session
            challenge = self._send("GET", {"operation": "getchallenge", "username": self.username})
            key = hashlib.md5((str(challenge["token"]) + self._key).encode()).hexdigest()
            result = self._send("POST", {"operation": "login", "username": self.username, "accessKey": key})
            self._session, self.user_id = result["sessionName"], result["userId"]
            return self._session

    def _send(self, method: str, params: dict[str, Any], files: Any = None) -> Any:
        if method == "GET":
            response = self._http.request("GET", "webservice.php", params=params)
        else:
            response = self._http.request("POST", "webservice.php", data=params, files=files)
        try:
            body = response.json()
        except ValueError:
            raise Retryable(
                f"{self.dialect}: not a webservice answer (HTTP {response.status_code}): {response.text[:200]!r}"
            ) from None
        if body.get("success"):
            return body.get("result")
        error = body.get("error") or {}
        code, message = str(error.get("code") or "UNKNOWN"), str(error.get("message") or "")
        if code in SESSION_CODES:
            raise _SessionLost(code)
        text = f"{self.dialect}: {code}: {message}"
        if code in CREDENTIAL_CODES:
            raise Permanent(f"{text} (check crm.username and crm.access_key)")
        if code in TRANSIENT_CODES:
            raise Retryable(text)
        raise Permanent(text)

    def call(self, method: str, operation: str, params: dict[str, Any] | None = None, files: Any = None) -> Any:
        for attempt in (1, 2):
            session = self.login()
            try:
                return self._send(method, {"operation": operation, "sessionName": session, **(params or {})}, files)
            except _SessionLost:
                with self._lock:
                    if self._session == session:
                        self._session = None  # expired: log in again, once
                if attempt == 2:
                    raise Permanent(f"{self.dialect}: the session was refused right after logging in") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def query(self, module: str, where: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while True:
            page = self.call("GET", "query", {"query": f"select * from {module} where {where} limit {len(rows)}, {PAGE};"})
            rows.extend(page)
            if len(page) < PAGE:
                return rows

    def relate(self, source: str, related: str, label: str) -> None:
        if self.dialect == "vtenext":
            self.call("POST", "relate", {"id": source, "relatelist": json.dumps([related])})
        else:
            self.call("POST", "add_related", {"sourceRecordId": source, "relatedRecordId": related, "relationIdLabel": label})

    def related(self, wsid: str, module: str) -> list[dict[str, Any]]:
        return self.call("GET", "retrieve_related", {"id": wsid, "relatedType": module, "relatedLabel": module}) or []

    def forget_session(self) -> None:
        """Drop the session: the next call logs in afresh."""
        with self._lock:
            self._session = None

    def close(self) -> None:
        self._http.close()


class _SessionLost(Exception):
    pass
