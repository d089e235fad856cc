"""A test double of Exchange Web Services (EWS): a real HTTP server on 127.0.0.1, in a thread.

This is NOT Exchange. It answers exchangelib's SOAP requests with the documents Microsoft
publishes for these operations, for the small part of EWS the gateway uses:

- FindFolder, GetFolder, CreateFolder (learn.microsoft.com/exchange/client-developer/
  web-service-reference/findfolder-operation, getfolder-operation, createfolder-operation);
- SyncFolderItems with SyncState, IncludesLastItemInRange, Changes/Create|Update|Delete, paging
  by MaxChangesReturned, and the ErrorInvalidSyncStateData error response
  (…/syncfolderitems-operation, …/syncfolderitemsresponsemessage);
- FindItem with a shallow Traversal, BaseShape IdOnly plus AdditionalProperties
  (item:Categories, item:DateTimeReceived, message:InternetMessageId) and paging by
  IndexedPageItemView MaxEntriesReturned/Offset, answered with RootFolder IndexedPagingOffset,
  TotalItemsInView and IncludesLastItemInRange (…/finditem-operation,
  …/indexedpageitemview, …/rootfolder-finditemresponsemessage); a Restriction only of the form
  IsEqualTo FieldURI message:InternetMessageId / FieldURIOrConstant Constant Value (…/restriction,
  …/isequalto, …/internetmessageid), as a search for one mail by its Message-ID sends it, plus
  the AdditionalProperty item:Size (…/size);
- GetItem with AdditionalProperties item:DateTimeReceived and message:InternetMessageId
  (…/getitem-operation-email-message, …/additionalproperties, …/internetmessageid);
- GetItem with MimeContent as base64 (…/getitem-operation-email-message, …/mimecontent,
  …/includemimecontent), UpdateItem with SetItemField/DeleteItemField item:Categories
  (…/updateitem-operation, …/setitemfield), MoveItem (…/moveitem-operation);
- Subscribe with StreamingSubscriptionRequest and GetStreamingEvents answered as a chunked
  stream of SOAP envelopes with Notifications and ConnectionStatus OK/Closed
  (…/subscribe-operation, …/getstreamingevents-operation, [MS-OXWSNTIF] 2.2.4.2);
- ConvertId, as exchangelib's version probe sends it (an id of "DUMMY", answered
  ErrorInvalidIdMalformed in a response whose header carries ServerVersionInfo:
  …/convertid-operation, …/serverversioninfo), for configurations without `build`;
- GetUserAvailability with FreeBusyViewOptions, answered from calendars the tests fill
  (ews_free_busy.py says which documents);
- throttling as a soap:Fault whose detail carries ResponseCode ErrorServerBusy and
  MessageXml/Value Name="BackOffMilliseconds" ("EWS throttling in Exchange",
  …/exchange-web-services/ews-throttling-in-exchange), and HTTP 503 with Retry-After;
- HTTP Basic authentication (401 on a wrong password), ExchangeImpersonation headers
  (…/exchangeimpersonation) and delegate access through DistinguishedFolderId/Mailbox;
  DistinguishedFolderId `inbox` and `sentitems` (…/distinguishedfolderid) name the mailbox's
  "Inbox" and "Sent Items" folders (the latter exists once a test delivers into it).

Item ids change when an item moves (as on Exchange Server); folder and item ids carry the
mailbox so any id names its mailbox. Tests drive it through the Python methods below and
read what it stored (categories, folders, the times it asked a client to back off).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import socket
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

from tests.mailboxes.exchange import ews_free_busy

S = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
HEADER = (
    '<s:Header><t:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" '
    'MinorBuildNumber="6" Version="V2017_07_11"/></s:Header>'
)


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


@dataclass
class Item:
    id: str
    changekey: int
    folder: str
    mime: bytes
    categories: list[str] = field(default_factory=list)
    received: float = field(default_factory=time.time)  # DateTimeReceived

    def xml_id(self) -> str:
        return f'<t:ItemId Id="{self.id}" ChangeKey="CK{self.changekey}"/>'


@dataclass
class Folder:
    id: str
    name: str
    parent: str
    log: list[tuple[int, str, str]] = field(default_factory=list)  # (seq, Create|Update|Delete, item id)


class EwsDouble:
    def __init__(
        self,
        username: str = "svc-crm",
        password: str = "secret",
        mailboxes: list[str] | None = None,
        impersonation_for: list[str] | None = None,
    ) -> None:
        self.username, self.password = username, password
        self.allowed = set(impersonation_for if impersonation_for is not None else (mailboxes or []))
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.seq = itertools.count(1)
        self.ids = itertools.count(1)
        self.epoch = 1  # sync states of an older epoch are "expired"
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, Item] = {}
        self.roots: dict[str, str] = {}
        self.page_size = 2  # at most this many changes per SyncFolderItems answer, to force paging
        self.requests: list[tuple[float, str, str]] = []  # (time, operation, mailbox)
        self.mime_reads = 0  # items whose MimeContent was sent
        self.searched: list[str] = []  # the InternetMessageIds FindItem restrictions asked for
        self.throttled: list[tuple[float, float]] = []  # (when answered busy, back-off asked in seconds)
        self._busy: list[tuple[str, float]] = []  # queued throttling answers: ("fault"|"503", seconds)
        self._drop_next = 0
        self.subscriptions: dict[str, tuple[str, set[str]]] = {}  # id → (mailbox, folder ids)
        self.events: dict[str, list[tuple[str, str, str]]] = {}  # subscription → pending (type, item, folder)
        self.streams: list[Any] = []
        self.calendars: dict[str, list[ews_free_busy.Event]] = {}  # address → its events (GetUserAvailability)
        for mb in mailboxes or []:
            self.add_mailbox(mb)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="ews-double", daemon=True)

    # ---- test controls ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/EWS/Exchange.asmx"

    def start(self) -> EwsDouble:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.drop_streams()
        self.server.shutdown()
        self.server.server_close()

    def add_event(self, mailbox: str, start: Any, end: Any, busy_type: str = "Busy", subject: str = "") -> None:
        """An event in a mailbox's calendar (its free/busy, as GetUserAvailability answers it)."""
        with self.lock:
            self.calendars.setdefault(mailbox.lower(), []).append(ews_free_busy.Event(start, end, busy_type, subject))

    def add_mailbox(self, mailbox: str) -> None:
        with self.lock:
            self.calendars.setdefault(mailbox.lower(), [])
            root = self._new_folder(mailbox, "Top of Information Store", "")
            self.roots[mailbox] = root.id
            self._new_folder(mailbox, "Inbox", root.id)

    def _new_folder(self, mailbox: str, name: str, parent: str) -> Folder:
        f = Folder(f"F.{mailbox}.{next(self.ids)}", name, parent)
        self.folders[f.id] = f
        return f

    def folder(self, mailbox: str, name: str) -> Folder | None:
        with self.lock:
            root = self.roots[mailbox]
            return next((f for f in self.folders.values() if f.parent == root and f.name == name), None)

    def create_folder(self, mailbox: str, name: str) -> Folder:
        with self.lock:
            return self.folder(mailbox, name) or self._new_folder(mailbox, name, self.roots[mailbox])

    def deliver(self, mailbox: str, folder: str, mime: bytes) -> str:
        """A mail lands in a folder (a user dragged it there): a Create change and a NewMailEvent."""
        with self.lock:
            f = self.create_folder(mailbox, folder)
            item = Item(f"I.{mailbox}.{next(self.ids)}", 1, f.id, mime)
            self.items[item.id] = item
            self._log(f, "Create", item.id, "NewMailEvent")
            return item.id

    def _log(self, f: Folder, kind: str, item_id: str, event: str) -> None:
        f.log.append((next(self.seq), kind, item_id))
        for sid, (_mb, fids) in self.subscriptions.items():
            if f.id in fids:
                self.events.setdefault(sid, []).append((event, item_id, f.id))
        self.changed.notify_all()

    def categories(self, mailbox: str, folder: str) -> list[list[str]]:
        with self.lock:
            f = self.folder(mailbox, folder)
            return [list(i.categories) for i in self.items.values() if f and i.folder == f.id]

    def expire_sync_states(self) -> None:
        """Every sync state handed out so far becomes invalid (ErrorInvalidSyncStateData)."""
        with self.lock:
            self.epoch += 1

    def throttle(self, times: int = 1, seconds: float = 0.5, kind: str = "fault") -> None:
        """The next `times` requests are answered ErrorServerBusy (kind "fault") or HTTP 503."""
        with self.lock:
            self._busy.extend([(kind, seconds)] * times)

    def drop_next(self, n: int = 1) -> None:
        """Close the connection of the next `n` requests without an answer."""
        with self.lock:
            self._drop_next += n

    def drop_streams(self) -> None:
        """Cut every open GetStreamingEvents connection (a load balancer or network hiccup)."""
        with self.lock:
            streams, self.streams = self.streams, []
            self.changed.notify_all()
        for conn in streams:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def count(self, op: str) -> int:
        with self.lock:
            return sum(1 for _, o, _ in self.requests if o == op)

    # ---- SOAP -----------------------------------------------------------------------------

    def envelope(self, body: str) -> bytes:
        return (
            f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}" xmlns:m="{M}" xmlns:t="{T}">'
            f"{HEADER}<s:Body>{body}</s:Body></s:Envelope>"
        ).encode()

    @staticmethod
    def response(op: str, messages: list[str]) -> str:
        return f"<m:{op}Response><m:ResponseMessages>{''.join(messages)}</m:ResponseMessages></m:{op}Response>"

    @staticmethod
    def ok(op: str, inner: str = "") -> str:
        return (
            f'<m:{op}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
            f"{inner}</m:{op}ResponseMessage>"
        )

    @staticmethod
    def error(op: str, code: str, text: str, extra: str = "") -> str:
        return (
            f'<m:{op}ResponseMessage ResponseClass="Error"><m:MessageText>{escape(text)}</m:MessageText>'
            f"<m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{extra}"
            f"</m:{op}ResponseMessage>"
        )

    def busy_fault(self, seconds: float) -> bytes:
        ms = int(seconds * 1000)
        return (
            f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{S}"><s:Body><s:Fault>'
            f'<faultcode xmlns:a="{T}">a:ErrorServerBusy</faultcode>'
            "<faultstring>The server cannot service this request right now. Try again later.</faultstring>"
            f'<detail><e:ResponseCode xmlns:e="{E}">ErrorServerBusy</e:ResponseCode>'
            f'<e:Message xmlns:e="{E}">The server cannot service this request right now. Try again later.</e:Message>'
            f'<t:MessageXml xmlns:t="{T}"><t:Value Name="BackOffMilliseconds">{ms}</t:Value></t:MessageXml>'
            "</detail></s:Fault></s:Body></s:Envelope>"
        ).encode()

    def folder_xml(self, f: Folder) -> str:
        kids = sum(1 for x in self.folders.values() if x.parent == f.id)
        total = sum(1 for i in self.items.values() if i.folder == f.id)
        parent = f'<t:ParentFolderId Id="{f.parent}" ChangeKey="AQ"/>' if f.parent else ""
        return (
            f'<t:Folder><t:FolderId Id="{f.id}" ChangeKey="AQ"/>{parent}<t:FolderClass>IPF.Note</t:FolderClass>'
            f"<t:DisplayName>{escape(f.name)}</t:DisplayName><t:TotalCount>{total}</t:TotalCount>"
            f"<t:ChildFolderCount>{kids}</t:ChildFolderCount><t:UnreadCount>0</t:UnreadCount></t:Folder>"
        )

    def found_xml(self, item: Item, uris: set[str | None]) -> str:
        """An item as FindItem returns it: its id and the AdditionalProperties asked for."""
        out = f"<t:Message>{item.xml_id()}"
        if "item:DateTimeReceived" in uris:
            out += f"<t:DateTimeReceived>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(item.received))}</t:DateTimeReceived>"
        if "item:Categories" in uris and item.categories:
            out += "<t:Categories>" + "".join(f"<t:String>{escape(c)}</t:String>" for c in item.categories) + "</t:Categories>"
        if "message:InternetMessageId" in uris:
            mid = self.message_id(item)
            out += f"<t:InternetMessageId>{escape(mid)}</t:InternetMessageId>" if mid else ""
        if "item:Size" in uris:
            out += f"<t:Size>{len(item.mime)}</t:Size>"
        return out + "</t:Message>"

    @staticmethod
    def message_id(item: Item) -> str:
        """The item's InternetMessageId: its MIME's Message-ID header, as Exchange stores it."""
        head = item.mime.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        return next((h.split(":", 1)[1].strip() for h in head.split("\r\n") if h.lower().startswith("message-id:")), "")

    def message_xml(self, item: Item, mime: bool, headers: bool = False) -> str:
        out = "<t:Message>"
        if mime:
            out += f'<t:MimeContent CharacterSet="UTF-8">{base64.b64encode(item.mime).decode()}</t:MimeContent>'
        out += item.xml_id() + f'<t:ParentFolderId Id="{item.folder}" ChangeKey="AQ"/><t:ItemClass>IPM.Note</t:ItemClass>'
        out += f"<t:Size>{len(item.mime)}</t:Size>"
        if item.categories:
            out += "<t:Categories>" + "".join(f"<t:String>{escape(c)}</t:String>" for c in item.categories) + "</t:Categories>"
        if headers:
            head = item.mime.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
            hs = []
            for line in head.replace("\r\n", "\n").split("\n"):
                if line[:1] in (" ", "\t") and hs:
                    hs[-1] = (hs[-1][0], hs[-1][1] + " " + line.strip())
                elif ":" in line:
                    k, v = line.split(":", 1)
                    hs.append((k.strip(), v.strip()))
            out += (
                "<t:InternetMessageHeaders>"
                + "".join(
                    f'<t:InternetMessageHeader HeaderName="{escape(k)}">{escape(v)}</t:InternetMessageHeader>' for k, v in hs
                )
                + "</t:InternetMessageHeaders>"
            )
        return out + "</t:Message>"


def _mailbox_of(double: EwsDouble, header: ET.Element | None, body: ET.Element) -> str | None:
    if header is not None:
        smtp = header.find(f".//{_q(T, 'ExchangeImpersonation')}//{_q(T, 'PrimarySmtpAddress')}")
        if smtp is not None and smtp.text:
            return smtp.text.strip().lower()
    addr = body.find(f".//{_q(T, 'DistinguishedFolderId')}/{_q(T, 'Mailbox')}/{_q(T, 'EmailAddress')}")
    if addr is not None and addr.text:
        return addr.text.strip().lower()
    for tag in ("FolderId", "ItemId"):
        el = body.find(f".//{_q(T, tag)}")
        if el is not None and el.get("Id", "").count(".") >= 2:
            return el.get("Id", "").split(".", 1)[1].rsplit(".", 1)[0]
    return None


def _handler(double: EwsDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms delayed-ACK stalls

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            auth = self.headers.get("Authorization", "")
            good = "Basic " + base64.b64encode(f"{double.username}:{double.password}".encode()).decode()
            if auth != good:
                self._send(401, b"", {"WWW-Authenticate": 'Basic realm="127.0.0.1"'})
                return
            root = ET.fromstring(data)
            header, body = root.find(_q(S, "Header")), root.find(_q(S, "Body"))
            op_el = body[0]  # type: ignore[index]
            op = op_el.tag.split("}")[1]
            mailbox = _mailbox_of(double, header, body)  # type: ignore[arg-type]
            with double.lock:
                double.requests.append((time.time(), op, mailbox or ""))
                if double._drop_next:
                    double._drop_next -= 1
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                busy = double._busy.pop(0) if double._busy else None
                if busy:
                    double.throttled.append((time.time(), busy[1]))
            if busy and busy[0] == "fault":
                self._send(500, double.busy_fault(busy[1]))
                return
            if busy:
                self._send(503, b"Service Unavailable", {"Retry-After": str(max(1, round(busy[1])))})
                return
            if mailbox and mailbox not in double.allowed:
                code = (
                    "ErrorImpersonateUserDenied"
                    if header is not None and header.find(f".//{_q(T, 'ExchangeImpersonation')}") is not None
                    else "ErrorAccessDenied"
                )
                text = (
                    "The account does not have permission to impersonate the requested user."
                    if code == "ErrorImpersonateUserDenied"
                    else "Access is denied. Check credentials and try again."
                )
                self._send(200, double.envelope(double.response(op, [double.error(op, code, text)])))
                return
            if op == "GetStreamingEvents":
                self._stream(op_el)
                return
            if op == "GetUserAvailabilityRequest":  # the request element is named so; no ResponseMessages in its answer
                with double.lock:
                    body = ews_free_busy.answer(double.calendars, op_el)
                self._send(200, double.envelope(body))
                return
            fn = getattr(self, "op_" + op, None)
            if fn is None:
                self._send(
                    500,
                    double.envelope(
                        f"<s:Fault><faultcode>s:Client</faultcode><faultstring>{op} is not "
                        "supported by this double</faultstring></s:Fault>"
                    ),
                )
                return
            with double.lock:
                out = fn(op_el, mailbox)
            self._send(200, double.envelope(double.response(op, out if isinstance(out, list) else [out])))

        # ---- version probe ----------------------------------------------------------------

        def op_ConvertId(self, el: ET.Element, _mailbox: str | None) -> list[str]:
            # every id asked for is malformed here; the header (ServerVersionInfo) is the answer
            ids = el.findall(f".//{_q(T, 'AlternateId')}") or [el]
            return [double.error("ConvertId", "ErrorInvalidIdMalformed", "Id is malformed.") for _ in ids]

        # ---- folders ----------------------------------------------------------------------

        def _folder_ref(self, el: ET.Element, mailbox: str | None) -> Folder | None:
            if el.tag == _q(T, "FolderId"):
                return double.folders.get(el.get("Id", ""))
            dist = el.get("Id")
            if mailbox is None or mailbox not in double.roots:
                return None
            if dist in ("msgfolderroot", "root"):
                return double.folders[double.roots[mailbox]]
            if dist == "inbox":
                return double.folder(mailbox, "Inbox")
            if dist == "sentitems":
                return double.folder(mailbox, "Sent Items")
            return None

        def op_GetFolder(self, el: ET.Element, mailbox: str | None) -> list[str]:
            out = []
            for ref in el.find(_q(M, "FolderIds")):  # type: ignore[union-attr]
                f = self._folder_ref(ref, mailbox)
                if f is None:
                    out.append(
                        double.error("GetFolder", "ErrorFolderNotFound", "The specified folder could not be found in the store.")
                    )
                else:
                    out.append(double.ok("GetFolder", f"<m:Folders>{double.folder_xml(f)}</m:Folders>"))
            return out

        def op_FindFolder(self, el: ET.Element, mailbox: str | None) -> list[str]:
            out = []
            want = el.find(f".//{_q(T, 'IsEqualTo')}//{_q(T, 'Constant')}")
            for ref in el.find(_q(M, "ParentFolderIds")):  # type: ignore[union-attr]
                parent = self._folder_ref(ref, mailbox)
                if parent is None:
                    out.append(
                        double.error("FindFolder", "ErrorFolderNotFound", "The specified folder could not be found in the store.")
                    )
                    continue
                kids = [
                    f
                    for f in double.folders.values()
                    if f.parent == parent.id and (want is None or f.name.lower() == (want.get("Value") or "").lower())
                ]
                out.append(
                    double.ok(
                        "FindFolder",
                        f'<m:RootFolder TotalItemsInView="{len(kids)}" IncludesLastItemInRange="true">'
                        f"<t:Folders>{''.join(double.folder_xml(f) for f in kids)}</t:Folders></m:RootFolder>",
                    )
                )
            return out

        def op_CreateFolder(self, el: ET.Element, mailbox: str | None) -> list[str]:
            parent = self._folder_ref(el.find(_q(M, "ParentFolderId"))[0], mailbox)  # type: ignore[index]
            out = []
            for f in el.find(_q(M, "Folders")):  # type: ignore[union-attr]
                name = f.findtext(_q(T, "DisplayName")) or ""
                if parent is None:
                    out.append(double.error("CreateFolder", "ErrorParentFolderNotFound", "The parent folder could not be found."))
                elif any(x.parent == parent.id and x.name == name for x in double.folders.values()):
                    out.append(
                        double.error("CreateFolder", "ErrorFolderExists", "A folder with the specified name already exists.")
                    )
                else:
                    mb = parent.id.split(".", 1)[1].rsplit(".", 1)[0]
                    new = double._new_folder(mb, name, parent.id)
                    out.append(
                        double.ok(
                            "CreateFolder",
                            f'<m:Folders><t:Folder><t:FolderId Id="{new.id}" ChangeKey="AQ"/></t:Folder></m:Folders>',
                        )
                    )
            return out

        # ---- items ------------------------------------------------------------------------

        def op_SyncFolderItems(self, el: ET.Element, mailbox: str | None) -> str:
            f = self._folder_ref(el.find(_q(M, "SyncFolderId"))[0], mailbox)  # type: ignore[index]
            if f is None:
                return double.error(
                    "SyncFolderItems",
                    "ErrorFolderNotFound",
                    "The specified folder could not be found in the store.",
                    "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>",
                )
            state = el.findtext(_q(M, "SyncState"))
            since = 0
            if state:
                try:
                    fid, epoch, seq = base64.b64decode(state).decode().split("|")
                    assert fid == f.id and int(epoch) == double.epoch
                    since = int(seq)
                except Exception:
                    return double.error(
                        "SyncFolderItems",
                        "ErrorInvalidSyncStateData",
                        "Synchronization state data is corrupt or otherwise invalid.",
                        "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>",
                    )
            limit = min(int(el.findtext(_q(M, "MaxChangesReturned")) or 512), double.page_size, 512)
            pending = [c for c in f.log if c[0] > since]
            if since == 0:  # a first sync lists what is there now, as Creates
                pending = [
                    (s, "Create", i)
                    for s, k, i in f.log
                    if k == "Create" and i in double.items and double.items[i].folder == f.id
                ]
            page, last = pending[:limit], len(pending) <= limit
            upto = page[-1][0] if page else (f.log[-1][0] if f.log and last else since)
            changes = []
            for _s, kind, iid in page:
                item = double.items.get(iid)
                if kind == "Delete" or item is None or item.folder != f.id:
                    changes.append(f'<t:Delete><t:ItemId Id="{iid}" ChangeKey="AQ"/></t:Delete>')
                else:
                    changes.append(
                        f"<t:{kind}><t:Message>{item.xml_id()}<t:Size>{len(item.mime)}</t:Size></t:Message></t:{kind}>"
                    )
            new_state = base64.b64encode(f"{f.id}|{double.epoch}|{upto}".encode()).decode()
            return double.ok(
                "SyncFolderItems",
                f"<m:SyncState>{new_state}</m:SyncState><m:IncludesLastItemInRange>"
                f"{'true' if last else 'false'}</m:IncludesLastItemInRange><m:Changes>{''.join(changes)}</m:Changes>",
            )

        def op_FindItem(self, el: ET.Element, mailbox: str | None) -> list[str]:
            uris = {u.get("FieldURI") for u in el.find(_q(M, "ItemShape")).iter(_q(T, "FieldURI"))}  # type: ignore[union-attr]
            view = el.find(_q(M, "IndexedPageItemView"))
            offset = int(view.get("Offset", "0")) if view is not None else 0
            limit = min(int(view.get("MaxEntriesReturned", "1000")) if view is not None else 1000, double.page_size)
            restriction = el.find(_q(M, "Restriction"))
            wanted: str | None = None
            if restriction is not None:
                equal = restriction.find(_q(T, "IsEqualTo"))
                uri = equal.find(_q(T, "FieldURI")) if equal is not None else None
                value = equal.find(f"{_q(T, 'FieldURIOrConstant')}/{_q(T, 'Constant')}") if equal is not None else None
                if uri is None or uri.get("FieldURI") != "message:InternetMessageId" or value is None:
                    return [double.error("FindItem", "ErrorUnsupportedQueryFilter", "The double knows no such restriction.")]
                wanted = value.get("Value", "")
                double.searched.append(wanted)

            def restricted(item: Item) -> bool:
                return wanted is None or double.message_id(item) == wanted

            out = []
            for ref in el.find(_q(M, "ParentFolderIds")):  # type: ignore[union-attr]
                f = self._folder_ref(ref, mailbox)
                if f is None:
                    out.append(
                        double.error("FindItem", "ErrorFolderNotFound", "The specified folder could not be found in the store.")
                    )
                    continue
                held = [i for i in double.items.values() if i.folder == f.id and restricted(i)]
                page, last = held[offset : offset + limit], offset + limit >= len(held)
                rows = "".join(double.found_xml(i, uris) for i in page)
                paging = "" if last else f' IndexedPagingOffset="{offset + len(page)}"'
                out.append(
                    double.ok(
                        "FindItem",
                        f'<m:RootFolder{paging} TotalItemsInView="{len(held)}" '
                        f'IncludesLastItemInRange="{"true" if last else "false"}"><t:Items>{rows}</t:Items></m:RootFolder>',
                    )
                )
            return out

        def op_GetItem(self, el: ET.Element, _mailbox: str | None) -> list[str]:
            shape = el.find(_q(M, "ItemShape"))
            uris = {u.get("FieldURI") for u in shape.iter(_q(T, "FieldURI"))}  # type: ignore[union-attr]
            mime = (shape.findtext(_q(T, "IncludeMimeContent")) == "true") or "item:MimeContent" in uris  # type: ignore[union-attr]
            headers = "item:InternetMessageHeaders" in uris
            out = []
            for ref in el.find(_q(M, "ItemIds")):  # type: ignore[union-attr]
                item = double.items.get(ref.get("Id", ""))
                if item is None:
                    out.append(double.error("GetItem", "ErrorItemNotFound", "The specified object was not found in the store."))
                else:
                    double.mime_reads += int(mime)
                    xml = double.message_xml(item, mime, headers)
                    extra = double.found_xml(item, uris & {"item:DateTimeReceived", "message:InternetMessageId"})
                    xml = xml.removesuffix("</t:Message>") + extra.split("/>", 1)[1].removesuffix("</t:Message>") + "</t:Message>"
                    out.append(double.ok("GetItem", f"<m:Items>{xml}</m:Items>"))
            return out

        def op_UpdateItem(self, el: ET.Element, _mailbox: str | None) -> list[str]:
            out = []
            for change in el.iter(_q(T, "ItemChange")):
                item = double.items.get(change.find(_q(T, "ItemId")).get("Id", ""))  # type: ignore[union-attr]
                if item is None:
                    out.append(
                        double.error("UpdateItem", "ErrorItemNotFound", "The specified object was not found in the store.")
                    )
                    continue
                for upd in change.find(_q(T, "Updates")):  # type: ignore[union-attr]
                    if upd.find(_q(T, "FieldURI")).get("FieldURI") != "item:Categories":  # type: ignore[union-attr]
                        continue
                    if upd.tag == _q(T, "SetItemField"):
                        item.categories = [s.text or "" for s in upd.iter(_q(T, "String"))]
                    elif upd.tag == _q(T, "DeleteItemField"):
                        item.categories = []
                item.changekey += 1
                double._log(double.folders[item.folder], "Update", item.id, "ModifiedEvent")
                out.append(
                    double.ok(
                        "UpdateItem",
                        f"<m:Items><t:Message>{item.xml_id()}</t:Message></m:Items>"
                        "<m:ConflictResults><t:Count>0</t:Count></m:ConflictResults>",
                    )
                )
            return out

        def op_MoveItem(self, el: ET.Element, mailbox: str | None) -> list[str]:
            target = self._folder_ref(el.find(_q(M, "ToFolderId"))[0], mailbox)  # type: ignore[index]
            out = []
            for ref in el.find(_q(M, "ItemIds")):  # type: ignore[union-attr]
                item = double.items.pop(ref.get("Id", ""), None)
                if item is None or target is None:
                    out.append(double.error("MoveItem", "ErrorItemNotFound", "The specified object was not found in the store."))
                    continue
                double._log(double.folders[item.folder], "Delete", item.id, "MovedEvent")
                mb = target.id.split(".", 1)[1].rsplit(".", 1)[0]
                item.id, item.folder, item.changekey = f"I.{mb}.{next(double.ids)}", target.id, item.changekey + 1
                double.items[item.id] = item
                double._log(target, "Create", item.id, "MovedEvent")
                out.append(double.ok("MoveItem", f"<m:Items><t:Message>{item.xml_id()}</t:Message></m:Items>"))
            return out

        # ---- notifications ----------------------------------------------------------------

        def op_Subscribe(self, el: ET.Element, mailbox: str | None) -> str:
            req = el.find(_q(M, "StreamingSubscriptionRequest"))
            if req is None:
                return double.error("Subscribe", "ErrorInvalidSubscriptionRequest", "Only streaming subscriptions here.")
            fids = {f.id for ref in req.find(_q(T, "FolderIds")) if (f := self._folder_ref(ref, mailbox))}  # type: ignore[union-attr]
            sid = f"S{next(double.ids)}"
            double.subscriptions[sid] = (mailbox or "", fids)
            return double.ok("Subscribe", f"<m:SubscriptionId>{sid}</m:SubscriptionId>")

        def op_Unsubscribe(self, el: ET.Element, _mailbox: str | None) -> str:
            double.subscriptions.pop(el.findtext(_q(M, "SubscriptionId")) or "", None)
            return double.ok("Unsubscribe")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _stream(self, el: ET.Element) -> None:
            sids = [s.text or "" for s in el.iter(_q(T, "SubscriptionId"))]
            minutes = int(el.findtext(_q(M, "ConnectionTimeout")) or 1)
            with double.lock:
                unknown = [s for s in sids if s not in double.subscriptions]
            op = "GetStreamingEvents"
            if unknown:
                self._send(
                    200,
                    double.envelope(
                        double.response(
                            op,
                            [
                                double.error(
                                    op,
                                    "ErrorSubscriptionNotFound",
                                    "The specified subscription was not found.",
                                    f"<m:ErrorSubscriptionIds><m:SubscriptionId>{unknown[0]}</m:SubscriptionId></m:ErrorSubscriptionIds>",
                                )
                            ],
                        )
                    ),
                )
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.close_connection = True
            with double.lock:
                double.streams.append(self.connection)
            deadline = time.monotonic() + minutes * 60
            try:
                self._chunk(double.envelope(double.response(op, [double.ok(op, "<m:ConnectionStatus>OK</m:ConnectionStatus>")])))
                while time.monotonic() < deadline:
                    with double.lock:
                        if self.connection not in double.streams:
                            return
                        batch = {s: double.events.pop(s, []) for s in sids}
                        if not any(batch.values()):
                            double.changed.wait(0.2)
                            continue
                    notes = "".join(
                        f"<m:Notification><t:SubscriptionId>{s}</t:SubscriptionId>"
                        + "".join(
                            f"<t:{ev}><t:TimeStamp>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}</t:TimeStamp>"
                            f'<t:ItemId Id="{iid}" ChangeKey="AQ"/><t:ParentFolderId Id="{fid}" ChangeKey="AQ"/></t:{ev}>'
                            for ev, iid, fid in evs
                        )
                        + "</m:Notification>"
                        for s, evs in batch.items()
                        if evs
                    )
                    self._chunk(
                        double.envelope(
                            double.response(
                                op,
                                [
                                    double.ok(
                                        op,
                                        f"<m:Notifications>{notes}</m:Notifications><m:ConnectionStatus>OK</m:ConnectionStatus>",
                                    )
                                ],
                            )
                        )
                    )
                self._chunk(
                    double.envelope(double.response(op, [double.ok(op, "<m:ConnectionStatus>Closed</m:ConnectionStatus>")]))
                )
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                return
            finally:
                with double.lock:
                    if self.connection in double.streams:
                        double.streams.remove(self.connection)

    return Handler
