"""A test double of Microsoft Graph mail and the Entra ID token endpoint: a real HTTPS server on
127.0.0.1 (self-signed certificate made by the test), in a thread.

This is NOT Microsoft Graph. It answers with the JSON documents Microsoft publishes for:

- the OAuth 2.0 client credentials grant: GET {tenant}/v2.0/.well-known/openid-configuration
  and POST {tenant}/oauth2/v2.0/token (learn.microsoft.com/entra/identity-platform/
  v2-oauth2-client-creds-grant-flow), `invalid_client` / AADSTS7000215 on a wrong secret;
- GET /users/{id}/mailFolders?$filter=displayName eq '…' and POST /users/{id}/mailFolders
  (learn.microsoft.com/graph/api/user-list-mailfolders, user-post-mailfolders);
- GET /users/{id}/mailFolders/{id}/messages/delta with @odata.nextLink / @odata.deltaLink
  paging (learn.microsoft.com/graph/delta-query-messages, graph/api/message-delta), and
  410 Gone with error code SyncStateNotFound for an expired delta token;
- GET /users/{id}/mailFolders/{id}/messages ("List messages", graph/api/user-list-messages,
  graph/api/mailfolder-list-messages) with $select, $top (honoured up to `list_page_size`,
  so paging is exercised) and @odata.nextLink carrying the query with the server's $skip,
  and $filter=receivedDateTime ge {DateTimeOffset} (graph/query-parameters, filter);
- GET /users/{id}/messages (user-list-messages: every folder of the mailbox) with
  $filter=internetMessageId eq '<…>' (a quote in the value doubled, graph/query-parameters,
  filter) and $select of id, internetMessageId, parentFolderId; any other $filter there answers
  400 ErrorInvalidUrlQueryFilter; GET /users/{id}/mailFolders/{id} with $select=displayName
  (graph/api/mailfolder-get);
- GET /users/{id}/messages/{id}/$value (graph/api/message-get, "Get MIME content"),
  GET/PATCH …/messages/{id} with `categories` (graph/api/message-update),
  POST …/messages/{id}/move with destinationId (graph/api/message-move);
- `Prefer: IdType="ImmutableId"` (graph/outlook-immutable-id): ids that survive a move;
  without the header, ids change on move as the default ids do;
- POST /users/{id}/calendar/getSchedule from calendars the tests fill (graph_free_busy.py
  says which documents);
- throttling: 429 Too Many Requests with Retry-After (graph/throttling), and 403
  ErrorAccessDenied when the app lacks the Mail.ReadWrite application permission;
- groups for `mailboxes_group:`: GET /groups?$filter=mail eq '…' (graph/api/group-list) and
  GET /groups/{id}/transitiveMembers/microsoft.graph.user?$select=… (graph/api/
  group-list-transitivemembers): nested groups flattened, the OData cast keeping users only,
  `$top` honoured up to `member_page_size` so @odata.nextLink paging is exercised;
  403 Authorization_RequestDenied without GroupMember.Read.All (or Group.Read.All,
  Directory.Read.All), 404 Request_ResourceNotFound for an unknown group id.
"""

from __future__ import annotations

import itertools
import json
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.mailboxes.exchange import graph_free_busy


@dataclass
class GGroup:
    mail: str
    members: list[str] = field(default_factory=list)  # user addresses, or the ids of nested groups


@dataclass
class GMessage:
    immutable_id: str
    rest_id: str
    folder: str
    mime: bytes
    categories: list[str] = field(default_factory=list)
    received: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))  # receivedDateTime


class GraphDouble:
    def __init__(
        self,
        cert: str,
        key: str,
        tenant: str = "contoso",
        client_id: str = "app-1",
        secret: str = "s3cret",
        mailboxes: list[str] | None = None,
        roles: tuple[str, ...] = ("Mail.ReadWrite", "GroupMember.Read.All"),
    ) -> None:
        self.tenant, self.client_id, self.secret, self.roles = tenant, client_id, secret, set(roles)
        self.lock = threading.RLock()
        self.ids = itertools.count(1)
        self.seq = itertools.count(1)
        self.epoch = 1
        self.folders: dict[str, tuple[str, str]] = {}  # folder id → (mailbox, displayName)
        self.messages: dict[str, GMessage] = {}  # immutable id → message
        self.log: list[tuple[int, str, str]] = []  # (seq, folder id, immutable id): a change
        self.page_size = 2
        self.requests: list[tuple[float, str, str, dict[str, str]]] = []
        self.throttled: list[tuple[float, float]] = []
        self.mime_reads = 0
        self.searched: list[str] = []  # the internetMessageIds a $filter asked for
        self._busy: list[float] = []
        self.tokens: set[str] = set()
        self.mailboxes = {m.lower() for m in mailboxes or []}
        self.calendars: dict[str, list[graph_free_busy.Item]] = {m: [] for m in self.mailboxes}  # getSchedule's
        self.groups: dict[str, GGroup] = {}  # object id → group
        self.member_page_size = 2
        self.list_page_size = 2
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="graph-double", daemon=True)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> GraphDouble:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- test controls ------------------------------------------------------------------

    def add_event(self, mailbox: str, start: Any, end: Any, status: str = "busy", subject: str = "") -> None:
        """An event in a user's calendar (its free/busy, as getSchedule answers it)."""
        with self.lock:
            self.calendars.setdefault(mailbox.lower(), []).append(graph_free_busy.Item(start, end, status, subject))

    def folder_id(self, mailbox: str, name: str) -> str | None:
        with self.lock:
            return next((fid for fid, (mb, n) in self.folders.items() if mb == mailbox and n == name), None)

    def create_folder(self, mailbox: str, name: str) -> str:
        with self.lock:
            fid = self.folder_id(mailbox, name)
            if fid is None:
                fid = f"AAMkFolder{next(self.ids)}"
                self.folders[fid] = (mailbox, name)
            return fid

    def deliver(self, mailbox: str, folder: str, mime: bytes) -> str:
        with self.lock:
            fid = self.create_folder(mailbox, folder)
            n = next(self.ids)
            m = GMessage(f"AAkALgImm{n}", f"AAMkRest{n}", fid, mime)
            self.messages[m.immutable_id] = m
            self.log.append((next(self.seq), fid, m.immutable_id))
            return m.immutable_id

    def categories(self, mailbox: str, folder: str) -> list[list[str]]:
        with self.lock:
            fid = self.folder_id(mailbox, folder)
            return [list(m.categories) for m in self.messages.values() if m.folder == fid]

    def expire_delta_tokens(self) -> None:
        with self.lock:
            self.epoch += 1

    def throttle(self, times: int = 1, seconds: float = 1.0) -> None:
        with self.lock:
            self._busy.extend([seconds] * times)

    def count(self, method: str, path_part: str) -> int:
        with self.lock:
            return sum(1 for _, m, p, _ in self.requests if m == method and path_part in p)

    def add_group(self, mail: str, members: list[str]) -> str:
        """A mail-enabled group; its member users get mailboxes. Returns its object id."""
        with self.lock:
            gid = f"{next(self.ids):08x}-0000-4000-8000-000000000000"
            self.groups[gid] = GGroup(mail.lower())
            for m in members:
                self.add_member(gid, m)
            return gid

    def add_member(self, gid: str, member: str) -> None:
        with self.lock:
            self.groups[gid].members.append(member if member in self.groups else member.lower())
            if member not in self.groups:
                self.mailboxes.add(member.lower())

    def remove_member(self, gid: str, member: str) -> None:
        with self.lock:
            self.groups[gid].members.remove(member if member in self.groups else member.lower())

    def transitive_members(self, gid: str) -> list[str]:
        with self.lock:
            out: list[str] = []
            todo, seen = [gid], set()
            while todo:
                g = todo.pop(0)
                if g in seen:
                    continue
                seen.add(g)
                for m in self.groups[g].members:
                    if m in self.groups:
                        todo.append(m)
                    elif m not in out:
                        out.append(m)
            return out

    def find(self, any_id: str) -> GMessage | None:
        return self.messages.get(any_id) or next((m for m in self.messages.values() if m.rest_id == any_id), None)


def _handler(g: GraphDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
            self._raw(status, json.dumps(doc).encode(), "application/json", headers)

        def _raw(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
            self._json(
                status,
                {
                    "error": {
                        "code": code,
                        "message": message,
                        "innerError": {"date": time.strftime("%Y-%m-%dT%H:%M:%S"), "request-id": "0"},
                    }
                },
                headers,
            )

        def do_GET(self) -> None:  # noqa: N802
            self._dispatch("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._dispatch("POST")

        def do_PATCH(self) -> None:  # noqa: N802
            self._dispatch("PATCH")

        def _dispatch(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            url = urllib.parse.urlsplit(self.path)
            path, query = urllib.parse.unquote(url.path), dict(urllib.parse.parse_qsl(url.query))
            with g.lock:
                g.requests.append((time.time(), method, path, dict(self.headers)))
            t = f"/{g.tenant}"
            if path == f"{t}/v2.0/.well-known/openid-configuration":
                self._json(
                    200,
                    {
                        "token_endpoint": f"{g.base}{t}/oauth2/v2.0/token",
                        "issuer": f"{g.base}{t}/v2.0",
                        "authorization_endpoint": f"{g.base}{t}/oauth2/v2.0/authorize",
                    },
                )
                return
            if path == f"{t}/oauth2/v2.0/token" and method == "POST":
                form = dict(urllib.parse.parse_qsl(body.decode()))
                if form.get("client_id") != g.client_id or form.get("client_secret") != g.secret:
                    self._json(
                        401,
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client "
                            "secret provided. Ensure the secret being sent in the request is the client secret "
                            "value, not the client secret ID.",
                            "error_codes": [7000215],
                        },
                    )
                    return
                token = f"tok{next(g.ids)}"
                g.tokens.add(token)
                self._json(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})
                return
            if not path.startswith("/v1.0/"):
                self._error(404, "NotFound", "no such endpoint")
                return
            if self.headers.get("Authorization", "").removeprefix("Bearer ") not in g.tokens:
                self._error(401, "InvalidAuthenticationToken", "Access token is empty.")
                return
            with g.lock:
                wait = g._busy.pop(0) if g._busy else None
                if wait is not None:
                    g.throttled.append((time.time(), wait))
            if wait is not None:
                self._error(429, "TooManyRequests", "Too many requests.", {"Retry-After": str(wait)})
                return
            if path == "/v1.0/groups" or path.startswith("/v1.0/groups/"):
                self._groups(method, path.split("/")[3:], query)
                return
            if path.endswith("/calendar/getSchedule") and method == "POST":
                if not g.roles & {"Calendars.Read", "Calendars.ReadWrite"}:
                    self._error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
                    return
                if path.split("/")[3].lower() not in g.mailboxes:
                    self._error(404, "ErrorInvalidUser", f"The requested user '{path.split('/')[3]}' is invalid.")
                    return
                with g.lock:
                    status, doc = graph_free_busy.answer(g.calendars, json.loads(body), self.headers.get("Prefer", ""))
                self._json(status, doc)
                return
            if "Mail.ReadWrite" not in g.roles:
                self._error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
                return
            immutable = 'IdType="ImmutableId"' in self.headers.get("Prefer", "")
            parts = path.split("/")[2:]  # users, {id}, …
            if len(parts) < 3 or parts[0] != "users":
                self._error(400, "BadRequest", "Unsupported request")
                return
            mailbox = parts[1].lower()
            if mailbox not in g.mailboxes:
                self._error(404, "ErrorInvalidUser", f"The requested user '{parts[1]}' is invalid.")
                return
            with g.lock:
                self._mail(method, mailbox, parts[2:], query, body, immutable)

        def _groups(self, method: str, parts: list[str], query: dict[str, str]) -> None:
            if not g.roles & {"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"}:
                self._error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
                return
            if method != "GET":
                self._error(405, "Request_BadRequest", "Unsupported method")
                return
            with g.lock:
                if parts == []:
                    want = query.get("$filter", "")
                    mail = want.split("eq", 1)[1].strip().strip("'").replace("''", "'").lower() if "mail" in want else None
                    vals = [
                        {"id": gid, "mail": grp.mail, "displayName": grp.mail.split("@")[0]}
                        for gid, grp in g.groups.items()
                        if mail is None or grp.mail == mail
                    ]
                    self._json(200, {"@odata.context": f"{g.base}/v1.0/$metadata#groups", "value": vals})
                    return
                if len(parts) != 3 or parts[1:] != ["transitiveMembers", "microsoft.graph.user"]:
                    self._error(400, "Request_BadRequest", "Unsupported request")
                    return
                gid = parts[0]
                if gid not in g.groups:
                    self._error(
                        404,
                        "Request_ResourceNotFound",
                        f"Resource '{gid}' does not exist or one of its queried reference-property objects are not present.",
                    )
                    return
                members = g.transitive_members(gid)
            size = min(int(query.get("$top", "100")), g.member_page_size)
            skip = int(query.get("$skiptoken", "0"))
            fields = (query.get("$select") or "id,mail,userPrincipalName").split(",")
            vals = []
            for addr in members[skip : skip + size]:
                user = {"id": f"user-{addr}", "mail": addr, "userPrincipalName": addr}
                vals.append({k: v for k, v in user.items() if k in fields})
            doc: dict[str, Any] = {"@odata.context": f"{g.base}/v1.0/$metadata#users({','.join(fields)})", "value": vals}
            if skip + size < len(members):
                more = {k: v for k, v in query.items() if k != "$skiptoken"} | {"$skiptoken": str(skip + size)}
                doc["@odata.nextLink"] = (
                    f"{g.base}/v1.0/groups/{gid}/transitiveMembers/microsoft.graph.user?" + urllib.parse.urlencode(more)
                )
            self._json(200, doc)

        def _mid(self, m: GMessage, immutable: bool) -> str:
            return m.immutable_id if immutable else m.rest_id

        def _mail(self, method: str, mailbox: str, parts: list[str], query: dict[str, str], body: bytes, immutable: bool) -> None:
            base = f"{g.base}/v1.0/users/{mailbox}"
            if parts == ["mailFolders"] and method == "GET":
                want = query.get("$filter", "")
                name = want.split("eq", 1)[1].strip().strip("'").replace("''", "'") if "displayName" in want else None
                vals = [
                    {
                        "id": fid,
                        "displayName": n,
                        "parentFolderId": "root",
                        "childFolderCount": 0,
                        "unreadItemCount": 0,
                        "totalItemCount": sum(1 for m in g.messages.values() if m.folder == fid),
                    }
                    for fid, (mb, n) in g.folders.items()
                    if mb == mailbox and (name is None or n == name)
                ]
                self._json(200, {"@odata.context": f"{g.base}/v1.0/$metadata#users('{mailbox}')/mailFolders", "value": vals})
                return
            if parts == ["mailFolders"] and method == "POST":
                name = json.loads(body)["displayName"]
                if g.folder_id(mailbox, name):
                    self._error(409, "ErrorFolderExists", "A folder with the specified name already exists.")
                    return
                fid = g.create_folder(mailbox, name)
                self._json(
                    201,
                    {
                        "id": fid,
                        "displayName": name,
                        "parentFolderId": "root",
                        "childFolderCount": 0,
                        "unreadItemCount": 0,
                        "totalItemCount": 0,
                    },
                )
                return
            if parts == ["messages"] and method == "GET":
                self._search(base, mailbox, query, immutable)
                return
            if len(parts) == 2 and parts[0] == "mailFolders" and method == "GET":
                if parts[1] not in g.folders or g.folders[parts[1]][0] != mailbox:
                    self._error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                    return
                self._json(200, {"id": parts[1], "displayName": g.folders[parts[1]][1]})
                return
            if len(parts) == 3 and parts[0] == "mailFolders" and parts[2] == "messages" and method == "GET":
                self._list(base, parts[1], query, immutable)
                return
            if len(parts) == 4 and parts[0] == "mailFolders" and parts[2:] == ["messages", "delta"]:
                self._delta(base, mailbox, parts[1], query, immutable)
                return
            if len(parts) >= 2 and parts[0] == "messages":
                m = g.find(parts[1])
                if m is None or g.folders[m.folder][0] != mailbox:
                    self._error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                    return
                rest = parts[2:]
                if rest == ["$value"] and method == "GET":
                    g.mime_reads += 1
                    self._raw(200, m.mime, "text/plain")
                elif rest == [] and method == "GET":
                    self._json(200, {"id": self._mid(m, immutable), "categories": m.categories, "parentFolderId": m.folder})
                elif rest == [] and method == "PATCH":
                    doc = json.loads(body)
                    if "categories" in doc:
                        m.categories = list(doc["categories"])
                        g.log.append((next(g.seq), m.folder, m.immutable_id))
                    self._json(200, {"id": self._mid(m, immutable), "categories": m.categories, "parentFolderId": m.folder})
                elif rest == ["move"] and method == "POST":
                    dest = json.loads(body)["destinationId"]
                    if dest not in g.folders:
                        self._error(404, "ErrorItemNotFound", "The destination folder was not found.")
                        return
                    g.log.append((next(g.seq), m.folder, m.immutable_id))  # a removal from the old folder
                    m.folder, m.rest_id = dest, f"AAMkRest{next(g.ids)}"  # default ids change on move
                    g.log.append((next(g.seq), dest, m.immutable_id))
                    self._json(201, {"id": self._mid(m, immutable), "parentFolderId": dest, "categories": m.categories})
                else:
                    self._error(405, "ErrorInvalidRequest", "Unsupported method")
                return
            self._error(400, "BadRequest", "Unsupported request")

        def _search(self, base: str, mailbox: str, query: dict[str, str], immutable: bool) -> None:
            want = query.get("$filter", "")
            prefix = "internetMessageId eq '"
            if not (want.startswith(prefix) and want.endswith("'")):
                self._error(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
                return
            value = want[len(prefix) : -1].replace("''", "'")
            g.searched.append(value)
            fields = (query.get("$select") or "id,internetMessageId,parentFolderId").split(",")
            vals = []
            for m in g.messages.values():
                if g.folders[m.folder][0] == mailbox and _message_id(m.mime) == value:
                    full = {"id": self._mid(m, immutable), "internetMessageId": value, "parentFolderId": m.folder}
                    vals.append({k: v for k, v in full.items() if k in fields or k == "id"})
            self._json(200, {"@odata.context": f"{base}/messages", "value": vals})

        def _list(self, base: str, fid: str, query: dict[str, str], immutable: bool) -> None:
            if fid not in g.folders:
                self._error(404, "ErrorItemNotFound", "The specified folder could not be found in the store.")
                return
            want = query.get("$filter", "")
            since = want.split(" ge ", 1)[1].strip() if want.startswith("receivedDateTime ge ") else None
            if want and since is None:
                self._error(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
                return
            held = [m for m in g.messages.values() if m.folder == fid and (since is None or m.received >= since)]
            skip = int(query.get("$skip", "0"))
            size = min(int(query.get("$top", "10")), g.list_page_size)
            fields = (query.get("$select") or "id,internetMessageId,categories,receivedDateTime").split(",")
            vals = []
            for m in held[skip : skip + size]:
                full = {
                    "id": self._mid(m, immutable),
                    "internetMessageId": _message_id(m.mime),
                    "categories": m.categories,
                    "receivedDateTime": m.received,
                }
                vals.append(
                    {"@odata.etag": f'W/"{m.immutable_id}"'} | {k: v for k, v in full.items() if k in fields or k == "id"}
                )
            doc: dict[str, Any] = {"@odata.context": f"{base}/mailFolders('{fid}')/messages", "value": vals}
            if skip + size < len(held):
                more = {k: v for k, v in query.items() if k != "$skip"} | {"$skip": str(skip + size)}
                doc["@odata.nextLink"] = f"{base}/mailFolders/{fid}/messages?" + urllib.parse.urlencode(more)
            self._json(200, doc)

        def _delta(self, base: str, mailbox: str, fid: str, query: dict[str, str], immutable: bool) -> None:
            if fid not in g.folders:
                self._error(404, "ErrorItemNotFound", "The specified folder could not be found in the store.")
                return
            token = query.get("$deltatoken") or query.get("$skiptoken")
            since, skip = 0, 0
            if token:
                try:
                    epoch, since_s, skip_s = token.split("-")
                    assert int(epoch) == g.epoch
                    since, skip = int(since_s), int(skip_s)
                except Exception:
                    self._error(410, "SyncStateNotFound", "The sync state generation is not found, please reset.")
                    return
            upto = g.log[-1][0] if g.log else 0
            changed = {i for s, f, i in g.log if f == fid and s > since and s <= upto}
            if since == 0:
                changed = {i for i, m in g.messages.items() if m.folder == fid}
            rows = sorted(changed)[skip:]
            page, more = rows[: g.page_size], len(rows) > g.page_size
            vals = []
            for iid in page:
                m = g.messages[iid]
                if m.folder != fid:
                    vals.append(
                        {
                            "@odata.type": "#microsoft.graph.message",
                            "id": self._mid(m, immutable),
                            "@removed": {"reason": "deleted"},
                        }
                    )
                else:
                    mid = _message_id(m.mime)
                    vals.append(
                        {
                            "@odata.type": "#microsoft.graph.message",
                            "id": self._mid(m, immutable),
                            "internetMessageId": mid,
                            "categories": m.categories,
                        }
                    )
            link = f"{base}/mailFolders/{fid}/messages/delta?"
            doc: dict[str, Any] = {"@odata.context": f"{g.base}/v1.0/$metadata#Collection(message)", "value": vals}
            if more:
                doc["@odata.nextLink"] = link + urllib.parse.urlencode({"$skiptoken": f"{g.epoch}-{since}-{skip + len(page)}"})
            else:
                doc["@odata.deltaLink"] = link + urllib.parse.urlencode({"$deltatoken": f"{g.epoch}-{upto}-0"})
            self._json(200, doc)

    return Handler


def _message_id(mime: bytes) -> str | None:
    return mime.split(b"Message-ID:", 1)[1].split(b"\r\n", 1)[0].strip().decode() if b"Message-ID:" in mime else None
