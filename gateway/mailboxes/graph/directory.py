"""`mailboxes_group:` for the `graph` source: the mail addresses of a group's members.

A group is named by its object id or by its mail address (looked up with
`GET /groups?$filter=mail eq '…'`, learn.microsoft.com/graph/api/group-list). Its members,
nested groups flattened, come from `GET /groups/{id}/transitiveMembers/microsoft.graph.user`
(graph/api/group-list-transitivemembers), page by page through @odata.nextLink; the cast
leaves devices, contacts and service principals out. A member without `mail` is reached by
its userPrincipalName. Both need the GroupMember.Read.All application permission.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Protocol

import httpx

from gateway.errors import Permanent


class GraphClient(Protocol):
    """What the lookup needs of the source's client (gateway/mailboxes/graph/source.py)."""

    def request(self, method: str, url: str, what: str, attempts: int = ..., **kw: Any) -> httpx.Response: ...


_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
PERMISSION = "GroupMember.Read.All"


class DirectoryError(Permanent):
    """The group is not there, or the app may not read it: waiting will not fix it."""


def _refused(r: httpx.Response, what: str) -> DirectoryError | None:
    """A 404 or another error answer (401 and 403 are the client's: it names the permission)."""
    if r.status_code == 404:
        return DirectoryError(f"Graph: {what}: no such group")
    if r.status_code >= 400:
        return DirectoryError(f"Graph: {what}: {r.status_code} {r.reason_phrase}")
    return None


def group_id(client: GraphClient, group: str) -> str:
    """The object id of a group named by its id or by its mail address."""
    if _GUID.match(group):
        return group
    quoted = group.replace("'", "''")
    what = f"looking up the group {group}"
    r = client.request(
        "GET", "/groups", what, permission=PERMISSION, params={"$filter": f"mail eq '{quoted}'", "$select": "id,mail"}
    )
    err = _refused(r, what)
    if err:
        raise err
    found = r.json().get("value", [])
    if not found:
        raise DirectoryError(f"Graph: mailboxes_group: no group has the address {group}")
    return str(found[0]["id"])


def group_members(client: GraphClient, group: str) -> list[str]:
    """The addresses of every user in the group, nested groups included."""
    gid = group_id(client, group)
    what = f"reading the members of the group {group}"
    url: str | None = f"/groups/{urllib.parse.quote(gid)}/transitiveMembers/microsoft.graph.user?" + urllib.parse.urlencode(
        {"$select": "mail,userPrincipalName", "$top": "999"}
    )
    out: list[str] = []
    while url:
        r = client.request("GET", url, what, permission=PERMISSION)
        err = _refused(r, what)
        if err:
            raise err
        doc = r.json()
        out += [
            str(u.get("mail") or u.get("userPrincipalName"))
            for u in doc.get("value", [])
            if u.get("mail") or u.get("userPrincipalName")
        ]
        url = doc.get("@odata.nextLink")
    return out
