"""Microsoft identity platform (Entra ID) tokens by client credentials, for Graph and IMAP.

One msal ConfidentialClientApplication per (authority, tenant, client): msal keeps the token
in its cache until shortly before it expires, so asking for one at every request or login
costs nothing most of the time. `ca_file` is trusted for the authority too (a TLS-inspecting
proxy, the test doubles), and it wins over REQUESTS_CA_BUNDLE, which requests prefers.
"""

from __future__ import annotations

import threading
import urllib.parse
from typing import Any

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"

_apps: dict[tuple[str, str, str, str], Any] = {}
_lock = threading.Lock()


class AuthorityError(ValueError):
    """The authority is not an Entra ID authority, or could not be reached to find out."""


def confidential_app(client_id: str, client_secret: str | None, *, tenant_id: str,
                     authority: str = DEFAULT_AUTHORITY, ca_file: str | None = None, timeout: float = 60.0,
                     shared: bool = True) -> Any:
    """The msal app for this client (`shared`: one per process, so its token cache is too).

    Raises AuthorityError when the authority's discovery fails, and requests' own errors
    when it is unreachable."""
    import msal

    key = (authority.rstrip("/"), tenant_id, client_id, client_secret or "")
    with _lock:
        if shared and key in _apps:
            return _apps[key]
        known = urllib.parse.urlsplit(authority).hostname == "login.microsoftonline.com"
        try:
            app = msal.ConfidentialClientApplication(
                client_id, client_credential=client_secret, authority=f"{key[0]}/{tenant_id}",
                http_client=_pinned_session(ca_file), timeout=timeout, instance_discovery=None if known else False)
        except ValueError as exc:
            raise AuthorityError(f"authority {key[0]}/{tenant_id}: {exc}") from None
        if shared:
            _apps[key] = app
        return app


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
