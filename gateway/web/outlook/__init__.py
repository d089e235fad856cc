"""The Outlook add-in: its XML manifest (a mail add-in with a task pane on a read message) and
the pane, a page and a script that ask the gateway's JSON API (/api/v1/) whether the open
mail is in the CRM, search the CRM and link the mail to a record. The pane runs in Outlook,
which loads Office.js from Microsoft's CDN and the pane from `web.public_url`."""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Route

from gateway.web.outlook import manifest, pane


def routes(gw: Any) -> list[BaseRoute]:
    return [
        Route("/outlook/manifest.xml", manifest.handler(gw)),
        Route("/outlook/pane.html", pane.handler(gw)),
    ]
