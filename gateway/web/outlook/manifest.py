"""GET /outlook/manifest.xml: the add-in's XML manifest (Microsoft's add-in only manifest, an
`OfficeApp` of type `MailApp`, schema 1.1), naming the gateway's HTTPS origin `web.public_url`.

Its Id is derived from that address, so one gateway always offers the same add-in and two
gateways never collide. Outlook reads FormSettings (Mailbox 1.1 clients) or, where it can,
VersionOverrides (a "CRM" button on a read message that opens the pane)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway import __version__
from gateway.web.console.render import TEMPLATES

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "xml"]))

# The namespace uuid5 derives add-in Ids in: one gateway address, one Id, forever.
_ADDIN_NAMESPACE = uuid.UUID("6f1f3c2e-6a55-4f1b-9a8e-3f0f2f7f4b10")


def addin_id(public_url: str) -> str:
    return str(uuid.uuid5(_ADDIN_NAMESPACE, public_url))


def manifest_xml(public_url: str, version: str) -> str:
    return _env.get_template("outlook/manifest.xml").render(
        base=public_url, addin_id=addin_id(public_url), version=_four_part(version)
    )


def _four_part(version: str) -> str:
    """The manifest's Version is n.n.n.n; the package's 0.1.0 becomes 0.1.0.0."""
    parts = [p for p in version.split(".") if p.isdigit()][:4]
    return ".".join(parts + ["0"] * (4 - len(parts)))


def handler(gw: Any) -> Callable[[Request], Awaitable[Response]]:
    async def serve(_: Request) -> Response:
        web = gw.config.web
        public_url = web.public_url if web is not None else None
        if not public_url:
            return PlainTextResponse(
                "No Outlook add-in: set web.public_url in config.yaml to the gateway's https:// address.", status_code=404
            )
        return Response(manifest_xml(public_url, __version__), media_type="application/xml; charset=utf-8")

    return serve
