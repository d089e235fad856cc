"""Odoo's two wires for one set of calls (docs/odoo.md): `call(model, method, ids, **params)`.

- `Json2`: the JSON-2 API of Odoo 19+ (`POST /json/2/<model>/<method>`, `Authorization:
  bearer <api_key>`, parameters by name).
- `JsonRpc`: `/jsonrpc` for older servers, `common.authenticate` once (under a lock, shared
  by every worker) then `object.execute_kw`. Odoo's own errors become ours here: a
  serialization failure or lock is `Retryable`, anything else `Permanent`.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from gateway.crm.http import HttpClient
from gateway.errors import Permanent, Retryable

_TRANSIENT = (
    "psycopg2.errors.SerializationFailure",
    "psycopg2.OperationalError",
    "psycopg2.errors.LockNotAvailable",
    "odoo.exceptions.ConcurrencyError",
)


class Json2:
    def __init__(self, http: HttpClient, database: str | None, api_key: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"bearer {api_key}"} | ({"X-Odoo-Database": database} if database else {})

    def call(self, model: str, method: str, ids: list[int] | None = None, **params: Any) -> Any:
        body = ({"ids": ids} if ids is not None else {}) | params
        return self.http.request("POST", f"json/2/{model}/{method}", json=body, headers=self.headers).json()

    def check(self) -> None:
        self.call("res.users", "context_get")


class JsonRpc:
    def __init__(self, http: HttpClient, database: str, login: str, secret: str) -> None:
        self.http, self.database, self.login, self.secret = http, database, login, secret
        self.uid: int | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _rpc(self, service: str, method: str, *args: Any) -> Any:
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"service": service, "method": method, "args": list(args)},
            "id": next(self._ids),
        }
        body = self.http.request("POST", "jsonrpc", json=payload).json()
        error = body.get("error")
        if not error:
            return body.get("result")
        data = error.get("data") or {}
        name, message = str(data.get("name") or ""), str(data.get("message") or error.get("message") or "")
        if name.startswith(_TRANSIENT):
            raise Retryable(f"odoo: {name}: {message}")
        if name == "odoo.exceptions.AccessDenied":
            raise Permanent(f"odoo: access denied (check crm.database, crm.username and the password or API key): {message}")
        raise Permanent(f"odoo: {name or 'error'}: {message}")

    def _uid(self) -> int:
        with self._lock:
            if self.uid is None:
                uid = self._rpc("common", "authenticate", self.database, self.login, self.secret, {})
                if not uid:
                    raise Permanent(
                        f"odoo: login refused for {self.login!r} on database {self.database!r} (check crm.username and the password or API key)"
                    )
                self.uid = int(uid)
            return self.uid

    def call(self, model: str, method: str, ids: list[int] | None = None, **params: Any) -> Any:
        uid = self._uid()
        return self._rpc(
            "object", "execute_kw", self.database, uid, self.secret, model, method, [ids] if ids is not None else [], params
        )

    def check(self) -> None:
        with self._lock:
            self.uid = None
        self._uid()
