"""Rendering a console page: the Jinja2 templates (autoescaped), the security headers every
page carries, times shown with their zone, and errors in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from gateway.web.console.viewer import csrf_token, viewer_of

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# No inline script or style anywhere: the pages load /static/ files only. A message's HTML is
# shown in a sandboxed srcdoc frame, which inherits this policy (so its scripts and remote
# images are blocked twice: by the sandbox and by the policy). `frame-src 'none'` still lets
# the srcdoc frame be (it fetches nothing) and forbids framing anything else.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'none'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def when(stamp: str | datetime | None) -> str:
    """A time as the console shows it: to the second, with its zone (UTC unless it says)."""
    if not stamp:
        return "never"
    try:
        at = stamp if isinstance(stamp, datetime) else datetime.fromisoformat(stamp)
    except ValueError:
        return str(stamp)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    zone = "UTC" if at.utcoffset() == UTC.utcoffset(None) else at.strftime("%z")
    return at.strftime("%Y-%m-%d %H:%M:%S ") + zone


def sent(at: datetime, offset_minutes: int) -> str:
    """A mail's Date as its sender's clock said it, with that zone, and in UTC."""
    local = at.astimezone(timezone(timedelta(minutes=offset_minutes)))
    return f"{local.strftime('%Y-%m-%d %H:%M:%S %z')} ({when(at)})"


_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "xml"]))
_env.filters["when"] = when
_env.globals["sent"] = sent


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A console page with the signed-in person, their CSRF token and the security headers."""
    who = viewer_of(request)
    body = _env.get_template(template).render(
        request=request, viewer=who, csrf=csrf_token(request) if who is not None else "", **context
    )
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def error(request: Request, status_code: int, title: str, detail: str) -> HTMLResponse:
    """A readable error page: what went wrong in words, and a way back."""
    return page(request, "console/error.html", status_code=status_code, title=title, detail=detail)
