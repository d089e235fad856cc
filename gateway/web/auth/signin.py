"""`GET /signin` (a plain form: name, password, next), `POST /signin` (303 to `next` on
success, the form again with the reason and 401 on failure) and `POST /signout`."""

from __future__ import annotations

import html
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.web.auth.access import Access
from gateway.web.auth.sessions import Sessions


def safe_next(target: str) -> str:
    """Only a path of this site: `next=https://evil.example` must not send a person away."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def form_page(next_: str = "/", error: str = "", name: str = "", sso: str = "") -> str:
    problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    other = f'<p><a href="/signin/oidc?next={html.escape(quote(safe_next(next_)))}">{html.escape(sso)}</a></p>' if sso else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Sign in - crm-gateway</title>
<style>body{{font-family:sans-serif;margin:2em}}.error{{color:#b00;font-weight:bold}}label{{display:block;margin:.5em 0}}</style>
</head><body><h1>Sign in to crm-gateway</h1>{problem}
<form method="post" action="/signin">
<label>Name <input name="name" autocomplete="username" required value="{html.escape(name)}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<input type="hidden" name="next" value="{html.escape(safe_next(next_))}">
<button type="submit">Sign in</button>
</form>{other}</body></html>"""


def routes(access: Access) -> list[Route]:
    sso = access.web.oidc.label if access.web.oidc is not None else ""

    async def show(request: Request) -> Response:
        return HTMLResponse(form_page(request.query_params.get("next", "/"), sso=sso))

    async def submit(request: Request) -> Response:
        form = await request.form()
        name, password, next_ = (str(form.get(k) or "") for k in ("name", "password", "next"))
        wait = access.wait_before_trying(name)
        if wait > 0:
            why = f"Too many wrong passwords for {name}: try again in {int(wait // 60) + 1} minutes."
            return HTMLResponse(form_page(next_, why, name, sso), status_code=429)
        user = await run_in_threadpool(access.sign_in, name, password)  # argon2 takes a while: not on the loop
        if user is None:
            return HTMLResponse(form_page(next_, "Wrong name or password.", name, sso), status_code=401)
        response = RedirectResponse(safe_next(next_ or "/"), status_code=303)
        access.sessions.start(request, response, user.name, user.password_hash or "")
        return response

    async def signout(_: Request) -> Response:
        response = RedirectResponse("/signin", status_code=303)
        Sessions.end(response)
        return response

    return [
        Route("/signin", show, methods=["GET"]),
        Route("/signin", submit, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
    ]
