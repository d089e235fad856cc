"""GET /outlook/pane.html: the task pane Outlook shows beside a read message.

The page is the same for everyone and served without a session (Outlook fetches it so); its
script (static/pane.js) asks /api/v1/me who is signed in and their CSRF token (the pane's
POST to /api/v1/link carries it), and reads the open mail through Office.js.
Outlook frames the pane (Outlook on the web) or shows it in a web view (desktop), so unlike
the console it may be framed by Outlook's origins, and it loads Office.js from Microsoft's
CDN, the one script from elsewhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway.web.console.render import TEMPLATES

OFFICE_JS = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js"
_OFFICE_CDN = "https://appsforoffice.microsoft.com"
_OUTLOOK_ORIGINS = "https://outlook.office.com https://outlook.office365.com https://outlook.live.com https://*.office.com"

CSP = (
    f"default-src 'self'; script-src 'self' {_OFFICE_CDN}; style-src 'self'; img-src 'self' data:; "
    f"connect-src 'self'; frame-src {_OFFICE_CDN} https://*.office.com; frame-ancestors 'self' {_OUTLOOK_ORIGINS}; "
    "form-action 'self'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "xml"]))


def handler(_gw: Any) -> Callable[[Request], Awaitable[Response]]:
    async def serve(_: Request) -> Response:
        return HTMLResponse(_env.get_template("outlook/pane.html").render(office_js=OFFICE_JS), headers=HEADERS)

    return serve
