"""Sign-in through an OpenID Connect provider (`web.oidc`): the authorization code flow with
PKCE, a state and a nonce, the ID token's signature checked against the provider's keys.

`GET /signin/oidc?next=/x` sends the person to the provider with a short-lived signed cookie
holding the state, the nonce, the PKCE verifier and where to go after; the provider sends them
back to `GET /signin/oidc/callback?code=…&state=…`, where the code is exchanged for the ID token
(authlib's OAuth2 client over httpx), its issuer, audience, expiry and nonce are checked
(joserfc), and the `web.users` entry the configured claim names gets a session like a password
sign-in's. The provider's metadata and keys are read when needed, so a key rotation is seen.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from itsdangerous import BadSignature, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.config.model import WebOidc
from gateway.web.auth.access import Access
from gateway.web.auth.signin import form_page, safe_next

COOKIE = "crm_gateway_oidc"
FLOW_SECONDS = 600  # the person has ten minutes at the provider


class OidcFailed(Exception):
    """The provider's answer cannot sign anyone in; the message says why, for the form."""


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    try:
        res = await client.get(url)
        res.raise_for_status()
        doc = res.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcFailed(f"the sign-in provider did not answer at {url}: {exc}") from exc
    if not isinstance(doc, dict):
        raise OidcFailed(f"the sign-in provider's {url} is not a JSON object")
    return doc


async def _metadata(client: httpx.AsyncClient, oidc: WebOidc) -> dict[str, Any]:
    doc = await _get_json(client, oidc.issuer.rstrip("/") + "/.well-known/openid-configuration")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(doc.get(key), str):
            raise OidcFailed(f"the sign-in provider's metadata has no {key}")
    return doc


def _redirect_uri(request: Request, oidc: WebOidc) -> str:
    return oidc.redirect_url or str(request.url_for("oidc_callback"))


def routes(access: Access) -> list[Route]:
    oidc = access.web.oidc
    if oidc is None:
        return []
    flows = URLSafeTimedSerializer(access.sessions.secret, salt="crm-gateway-oidc")
    sso = oidc.label

    def failed(next_: str, why: str) -> Response:
        response = HTMLResponse(form_page(next_, why, sso=sso), status_code=401)
        response.delete_cookie(COOKIE, path="/signin/oidc")
        return response

    async def start(request: Request) -> Response:
        next_ = safe_next(request.query_params.get("next", "/"))
        try:
            async with httpx.AsyncClient(timeout=15) as client:
                meta = await _metadata(client, oidc)
        except OidcFailed as exc:
            return failed(next_, str(exc))
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        query = {
            "response_type": "code",
            "client_id": oidc.client_id,
            "redirect_uri": _redirect_uri(request, oidc),
            "scope": " ".join(oidc.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        response = RedirectResponse(f"{meta['authorization_endpoint']}?{urlencode(query)}", status_code=303)
        response.set_cookie(
            COOKIE,
            flows.dumps({"s": state, "n": nonce, "v": verifier, "next": next_}),
            max_age=FLOW_SECONDS,
            httponly=True,
            samesite="lax",  # the provider's redirect back is a top-level GET: Lax sends it
            secure=request.url.scheme == "https",
            path="/signin/oidc",
        )
        return response

    async def callback(request: Request) -> Response:
        try:
            flow = flows.loads(request.cookies.get(COOKIE, ""), max_age=FLOW_SECONDS)
        except BadSignature:
            return failed("/", "The sign-in took too long or was started elsewhere: start it again.")
        q = request.query_params
        if q.get("error"):
            return failed(flow["next"], f"The sign-in provider refused: {q.get('error_description') or q['error']}")
        if not secrets.compare_digest(q.get("state", ""), flow["s"]):
            return failed(flow["next"], "The sign-in answer does not belong to this browser's sign-in: start it again.")
        try:
            claims = await _identify(request, oidc, q.get("code", ""), flow)
        except OidcFailed as exc:
            return failed(flow["next"], str(exc))
        value = claims.get(oidc.claim)
        if not isinstance(value, str) or not value:
            return failed(flow["next"], f"The sign-in provider did not say the {oidc.claim} of this person.")
        # An address the provider has not vouched for (false, or not said) could be anyone's.
        if oidc.claim == "email" and claims.get("email_verified") is not True:
            return failed(flow["next"], "The sign-in provider has not verified this e-mail address (email_verified is not true).")
        user = access.by_claim(value, oidc.claim)
        if user is None:
            return failed(flow["next"], f"{value} may not use this gateway: an admin adds them to web.users.")
        response = RedirectResponse(flow["next"], status_code=303)
        response.delete_cookie(COOKIE, path="/signin/oidc")
        access.sessions.start(request, response, user.name, user.password_hash or "")
        return response

    return [Route("/signin/oidc", start, methods=["GET"]), Route("/signin/oidc/callback", callback, name="oidc_callback")]


async def _identify(request: Request, oidc: WebOidc, code: str, flow: dict[str, str]) -> dict[str, Any]:
    """The ID token's claims, once the code is exchanged and the token checked."""
    if not code:
        raise OidcFailed("The sign-in provider sent no code back: start again.")
    async with httpx.AsyncClient(timeout=15) as http:
        meta = await _metadata(http, oidc)
        keys = await _get_json(http, meta["jwks_uri"])
    client = AsyncOAuth2Client(
        client_id=oidc.client_id,
        client_secret=oidc.client_secret,
        redirect_uri=_redirect_uri(request, oidc),
        token_endpoint_auth_method="client_secret_basic" if oidc.client_secret else "none",
        timeout=15,
    )
    try:
        async with client:
            token = await client.fetch_token(meta["token_endpoint"], code=code, code_verifier=flow["v"])
    except Exception as exc:  # authlib raises its own OAuth errors and httpx's
        raise OidcFailed(f"The sign-in provider did not exchange the code: {exc}") from exc
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise OidcFailed("The sign-in provider sent no ID token (is `openid` among web.oidc.scopes?).")
    try:
        decoded = jwt.decode(id_token, KeySet.import_key_set(keys))  # type: ignore[arg-type]
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": meta.get("issuer") or oidc.issuer},
            aud={"essential": True, "value": oidc.client_id},
            nonce={"essential": True, "value": flow["n"]},
            exp={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise OidcFailed(f"The sign-in provider's ID token is not valid here: {exc}") from exc
    return dict(decoded.claims)
