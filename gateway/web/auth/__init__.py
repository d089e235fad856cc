"""Sign-in, sessions, CSRF, API tokens and roles of the console and the API.

- `principal`: `Role`, `Principal` (who asks, what mailboxes they own) and how the config
  makes one; `access`: who a request comes from; `sessions`: the signed cookie;
  `csrf`: the token a browser's writes carry; `middleware`: sets `request.state.principal`
  and refuses who may not come in; `signin`: the sign-in form and sign-out.
"""

from gateway.web.auth.access import Access
from gateway.web.auth.csrf import csrf_token
from gateway.web.auth.middleware import AuthMiddleware
from gateway.web.auth.principal import Principal, Role, principal_for

__all__ = ["Access", "AuthMiddleware", "Principal", "Role", "csrf_token", "principal_for"]
