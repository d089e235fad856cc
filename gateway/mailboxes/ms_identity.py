"""Microsoft identity platform (Entra ID) tokens by client credentials, for Graph and IMAP.

One msal ConfidentialClientApplication per (authority, tenant, client, secret, CA bundle):
msal keeps the token in its cache until shortly before it expires, so asking for one at
every request or login costs nothing most of the time. `ca_file` replaces the system's CAs
for the authority (a TLS-inspecting proxy, the test doubles), and it wins over
REQUESTS_CA_BUNDLE, which requests prefers.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"

_Key = tuple[str, str, str, str, str]
_apps: dict[_Key, Any] = {}
_building: dict[_Key, threading.Lock] = {}
_lock = threading.Lock()


class AuthorityError(ValueError):
    """The authority is not an Entra ID authority, or could not be reached to find out."""


def confidential_app(
    client_id: str,
    client_secret: str | None,
    *,
    tenant_id: str,
    authority: str = DEFAULT_AUTHORITY,
    ca_file: str | None = None,
    timeout: float = 60.0,
    shared: bool = True,
) -> Any:
    """The msal app for this client (`shared`: one per process, so its token cache is too).

    msal asks the authority for its configuration while the app is built: that can take up
    to `timeout`, so only callers for the same app wait for each other. Raises AuthorityError
    when the discovery fails, and requests' own errors when the authority is unreachable."""
    key: _Key = (authority.rstrip("/"), tenant_id, client_id, client_secret or "", ca_file or "")
    if not shared:
        return _build(key, timeout)
    with _lock:
        if key in _apps:
            return _apps[key]
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _lock:
            if key in _apps:
                return _apps[key]
        app = _build(key, timeout)
        with _lock:
            return _apps.setdefault(key, app)


def _build(key: _Key, timeout: float) -> Any:
    import msal

    authority, tenant_id, client_id, client_secret, ca_file = key
    known = urllib.parse.urlsplit(authority).hostname == "login.microsoftonline.com"
    try:
        return msal.ConfidentialClientApplication(
            client_id,
            client_credential=client_secret or None,
            authority=f"{authority}/{tenant_id}",
            http_client=_pinned_session(ca_file or None),
            timeout=timeout,
            instance_discovery=None if known else False,
        )
    except ValueError as exc:
        raise AuthorityError(f"authority {authority}/{tenant_id}: {exc}") from None


def _pinned_session(ca_file: str | None) -> Any:
    """A requests.Session whose `ca_file` wins over REQUESTS_CA_BUNDLE."""
    import requests

    class Session(requests.Session):
        def merge_environment_settings(self, *args: Any, **kw: Any) -> Any:
            settings = super().merge_environment_settings(*args, **kw)
            if ca_file:
                settings["verify"] = ca_file
            return settings

    return Session()
