"""Exchange Online through Microsoft Graph: the `graph` source (app-only, Mail.ReadWrite).

Each watched folder is found by display name (created when missing and `create_folders:
true`) and read with a per-folder delta query; the @odata.nextLink / @odata.deltaLink is
persisted in the ledger after every page, so a restart resumes where it stopped. A 410
(expired delta token) starts the folder over: ids the ledger knows are skipped and so is a
Message-ID already taken from this folder, so the resync duplicates nothing. Ids are
immutable (`Prefer: IdType="ImmutableId"`), so a copy keeps its key when it is moved. The
MIME content comes from `/messages/{id}/$value`; the delta is polled every `poll_interval`
seconds (change notifications need a public HTTPS address and are not used here).
"""

from __future__ import annotations

import logging
import ssl
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence, Set
from datetime import UTC, datetime
from typing import Any

import httpx

from gateway.errors import GatewayError, Permanent, Retryable
from gateway.mailboxes.base import FolderListing, FolderRef, Found, Reach, SourceEnv, SourceRef
from gateway.mailboxes.graph import availability, finder, listing
from gateway.mailboxes.graph.config import GraphConfig
from gateway.mailboxes.graph.directory import group_members
from gateway.mailboxes.graph.writeback import GraphWriteback
from gateway.mailboxes.health import Health, sync_each
from gateway.mailboxes.roster import Roster
from gateway.mailboxes.roster import reach as roster_reach
from gateway.mailboxes.schedule import Schedule

log = logging.getLogger("gateway.graph")
PREFER = 'IdType="ImmutableId"'


class GraphError(Permanent):
    """Wrong credentials, a missing permission, mailbox or folder: waiting will not fix it."""


class Gone(Exception):
    """HTTP 410: the delta token expired."""


class GraphClient:
    def __init__(self, cfg: GraphConfig, stop: threading.Event | None = None) -> None:
        import requests

        from gateway.mailboxes.ms_identity import AuthorityError, confidential_app

        self.cfg = cfg
        self.stop = stop or threading.Event()
        try:
            self.app = confidential_app(
                cfg.client_id,
                cfg.client_secret,
                tenant_id=cfg.tenant_id,
                authority=cfg.authority,
                ca_file=cfg.ca_file,
                timeout=cfg.timeout,
                shared=False,
            )
        except AuthorityError as exc:  # discovery failed: unreachable or not an Entra ID authority
            raise GraphError(f"Graph: {exc}") from None
        except requests.RequestException as exc:
            raise Retryable(f"Entra ID unreachable: {exc}") from None
        parts = urllib.parse.urlsplit(cfg.endpoint)
        self.scope = f"{parts.scheme}://{parts.netloc}/.default"
        tls: Any = ssl.create_default_context(cafile=cfg.ca_file) if cfg.ca_file else True
        self.http = httpx.Client(timeout=cfg.timeout, verify=tls, headers={"Prefer": PREFER})
        self.throttle_count = 0

    def close(self) -> None:
        self.http.close()

    def _token(self) -> str:
        try:
            got = self.app.acquire_token_for_client(scopes=[self.scope])
        except Exception as exc:  # the token endpoint is unreachable
            raise Retryable(f"Entra ID token endpoint unreachable: {exc}") from None
        if "access_token" not in got:
            if got.get("error") in ("invalid_client", "unauthorized_client", "invalid_request"):
                raise GraphError(
                    f"Graph: the app {self.cfg.client_id} was refused a token by tenant {self.cfg.tenant_id}: "
                    f"{got.get('error')}: {str(got.get('error_description', '')).splitlines()[0]}"
                )
            raise Retryable(f"Graph token: {got.get('error')}: {got.get('error_description', '')}")
        return str(got["access_token"])

    def request(
        self, method: str, url: str, what: str, attempts: int = 6, permission: str = "Mail.ReadWrite", **kw: Any
    ) -> httpx.Response:
        if not url.startswith("http"):
            url = self.cfg.endpoint.rstrip("/") + url
        delay = 0.5
        extra = kw.pop("headers", {})
        for attempt in range(1, attempts + 1):
            try:
                r = self.http.request(method, url, headers={**extra, "Authorization": f"Bearer {self._token()}"}, **kw)
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise Retryable(f"Graph unreachable while {what}: {exc}") from None
                self.stop.wait(delay)
                delay = min(delay * 2, 30)
                continue
            if r.status_code in (429, 503, 504):
                wait = _retry_after(r) or delay
                self.throttle_count += 1
                log.info("graph: %s while %s; waiting %.2fs as asked", r.status_code, what, wait)
                if attempt == attempts or self.stop.wait(wait):
                    raise Retryable(f"Graph throttled while {what}", retry_after=wait)
                delay = min(delay * 2, 30)
                continue
            if r.status_code == 410:
                raise Gone(what)
            if r.status_code in (401, 403):
                raise GraphError(
                    f"Graph refused {what} ({r.status_code} {_code(r)}): the app needs the {permission} "
                    "application permission with admin consent (see docs/exchange.md)"
                )
            return r
        raise AssertionError("unreachable")


def _retry_after(r: httpx.Response) -> float | None:
    try:
        return float(r.headers.get("Retry-After", ""))
    except ValueError:
        return None


def _code(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["code"])
    except Exception:
        return r.reason_phrase


class GraphMailSource:
    type = "graph"

    def __init__(self, cfg: GraphConfig, env: SourceEnv) -> None:
        self.config, self.name, self.env = cfg, cfg.name, env
        self.client = GraphClient(cfg)
        group = cfg.mailboxes_group
        self.roster = Roster(
            cfg.mailboxes,
            env.resolve(cfg.mailboxes_file) if cfg.mailboxes_file else None,
            (lambda: group_members(self.client, group)) if group else None,
            cfg.directory_refresh,
        )
        self.health = Health()
        self.max_size = env.max_message_size
        self._folders: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.connected = False
        self.last_sync: datetime | None = None
        self.last_error = ""
        self.items: dict[str, int] = {f: 0 for f in cfg.folders}
        self.resyncs = 0

    def folder_id(self, mailbox: str, name: str, create: bool | None = None) -> str:
        key = (mailbox, name)
        if key in self._folders:
            return self._folders[key]
        quoted = name.replace("'", "''")
        r = self.client.request(
            "GET",
            f"/users/{mailbox}/mailFolders",
            f"looking for {name} in {mailbox}",
            params={"$filter": f"displayName eq '{quoted}'"},
        )
        if r.status_code == 404:
            raise GraphError(f"Graph: mailbox {mailbox} not found ({_code(r)})")
        found = [f for f in r.json().get("value", []) if f.get("displayName") == name]
        if found:
            fid = found[0]["id"]
        elif create if create is not None else self.config.create_folders:
            r = self.client.request(
                "POST", f"/users/{mailbox}/mailFolders", f"creating {name} in {mailbox}", json={"displayName": name}
            )
            fid = r.json()["id"]
            log.info("graph: created folder %s in %s", name, mailbox)
        else:
            raise GraphError(f"folder {name!r} is missing in {mailbox} (set create_folders: true to create it)")
        self._folders[key] = fid
        return fid

    def sync_folder(self, mailbox: str, name: str) -> int:
        if not self.env.intake.holds(self.name, mailbox):  # another gateway watches it (or none does yet)
            return 0
        fid = self.folder_id(mailbox, name)
        cursor = self.env.intake.cursor(FolderRef(self.name, mailbox, name)) or {}
        first = f"/users/{mailbox}/mailFolders/{fid}/messages/delta?" + urllib.parse.urlencode(
            {"$select": "id,internetMessageId,categories"}
        )
        link = cursor.get("link") if cursor.get("folder_id") == fid else None
        resync = False
        n = 0
        while True:
            try:
                r = self.client.request(
                    "GET",
                    link or first,
                    f"reading the delta of {name} in {mailbox}",
                    headers={"Prefer": f"{PREFER}, odata.maxpagesize={self.config.page_size}"},
                )
            except Gone:
                log.warning("graph %s: the delta token of %s/%s expired; reading the folder again", self.name, mailbox, name)
                self.resyncs += 1
                link, resync = None, True
                continue
            doc = r.json()
            for entry in doc.get("value", []):
                if "@removed" not in entry and self._take(mailbox, name, entry, resync):
                    n += 1
            link = doc.get("@odata.nextLink") or doc.get("@odata.deltaLink")
            self.env.intake.advance(FolderRef(self.name, mailbox, name), {"folder_id": fid, "link": link})
            if "@odata.deltaLink" in doc or not link:
                break
        self.items[name] = self.items.get(name, 0) + n
        self.last_sync = datetime.now(UTC)
        return n

    def _take(self, mailbox: str, folder: str, entry: dict[str, Any], resync: bool) -> bool:
        ref = SourceRef(self.name, mailbox, folder, entry["id"])
        if self.env.intake.is_known(ref):
            return False
        mid = entry.get("internetMessageId") or ""
        mid = f"<{mid.strip('<>')}>" if mid else ""
        if resync and mid and self._seen_here(mid, mailbox, folder):
            return False
        raw, size = self._mime(mailbox, entry["id"])
        if raw is None:
            return False
        if size > self.max_size:
            self.env.intake.hand_over([Found(ref, raw, size)])
        else:
            self.env.intake.hand_over([Found(ref, raw)])
        return True

    def _seen_here(self, message_id: str, mailbox: str, folder: str) -> bool:
        return self.env.intake.seen_in(message_id, FolderRef(self.name, mailbox, folder))

    def _mime(self, mailbox: str, item_id: str) -> tuple[bytes | None, int]:
        """The MIME content; above max_message_size only the headers (read until the blank line)."""
        url = self.config.endpoint.rstrip("/") + f"/users/{mailbox}/messages/{item_id}/$value"
        for _ in range(5):
            with self.client.http.stream("GET", url, headers={"Authorization": f"Bearer {self.client._token()}"}) as r:
                if r.status_code == 404:
                    return None, 0
                if r.status_code in (429, 503):
                    self.client.throttle_count += 1
                    self.client.stop.wait(_retry_after(r) or 1.0)
                    continue
                if r.status_code >= 400:
                    raise Retryable(f"Graph {r.status_code} reading a message in {mailbox}")
                buf = bytearray()
                for chunk in r.iter_bytes():
                    buf += chunk
                    if len(buf) > self.max_size:
                        head = bytes(buf).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
                        size = int(r.headers.get("Content-Length") or 0) or len(buf)
                        return head, max(size, len(buf))
                return bytes(buf), len(buf)
        raise Retryable(f"Graph kept throttling a message read in {mailbox}")

    @property
    def mailboxes(self) -> list[str]:
        """The roster as last read (status, write-back); a turn re-reads it when due."""
        return self.roster.known()

    def scan_once(self, progress: Callable[[int, int], None] | None = None) -> int:
        """One turn over every mailbox this gateway holds, each on its own: a mailbox that
        fails (not found, no permission on it) is marked and the others go on. Raises when
        the roster cannot be read the first time, or when every mailbox failed."""
        with self._lock:
            mailboxes = self.roster.mailboxes()
            _added, removed = self.health.follow(mailboxes)
            for key in [k for k in self._folders if k[0] in removed]:
                del self._folders[key]
            total = sync_each(
                self.health,
                mailboxes,
                holds=lambda mb: self.env.intake.holds(self.name, mb),
                sync=lambda mb: sum(self.sync_folder(mb, f) for f in self.config.folders),
                stopping=self.client.stop,
                log=log,
                label=f"graph {self.name}",
            )
        self.connected, self.last_error = True, self.health.summary() or self.roster.error
        return total

    def pending_count(self) -> int:
        return 0

    def listings(
        self,
        folder: str | None = None,
        since: datetime | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> Iterator[FolderListing]:
        """What the watched folders hold now (`reconcile`; gateway.mailboxes.base.Lister): listing.py."""
        return listing.listings(self, folder, since, progress)

    def marks_for(self, tags: Set[str]) -> frozenset[str]:
        return frozenset(tags)  # a tag is written back as the category of the same name

    def reachable(self) -> list[str]:
        return self.roster.mailboxes()

    def find_message(self, account: str, message_id: str) -> Found | None:
        """The mail by its Message-ID, anywhere in the mailbox (gateway.mailboxes.base.MessageFinder): finder.py."""
        if account not in self.reachable():
            return None
        return finder.find(self, account, message_id, self._mime, self.max_size)

    # ---- free/busy (gateway.mailboxes.base.Availability): availability.py ----------------

    def reach(self, address: str) -> Reach:
        return roster_reach(address, self.roster, [*self.config.owners, self.config.crm_user])

    def free_busy(self, addresses: Sequence[str], start: datetime, end: datetime, interval: int) -> list[Schedule]:
        mailboxes = self.roster.mailboxes()
        if not mailboxes:
            raise GraphError(f"graph {self.name}: no mailbox on the roster to ask the free/busy through")
        return availability.free_busy(self.client, self.name, mailboxes[0], addresses, start, end, interval)

    def run(self, stop: threading.Event) -> None:
        self.client.stop = stop
        while True:
            try:
                self.scan_once()
            except GatewayError as exc:
                self.last_error = str(exc)
                self.connected = not isinstance(exc, Permanent)  # a refusal, a group or file missing
                log.warning("graph %s: %s", self.name, exc)
            except Exception as exc:  # the ledger (locked, restarting), a bug: the poll goes on, the error shows
                self.last_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                log.warning("graph %s: %s", self.name, self.last_error, exc_info=True)
            if stop.wait(self.config.poll_interval):
                return

    def status(self) -> dict[str, Any]:
        last = self.last_sync.isoformat() if self.last_sync else None
        return {
            "type": self.type,
            "connected": self.connected,
            "mode": "poll",
            "last_sync": last,
            "last_error": self.last_error,
            "mailboxes": self.mailboxes,
            "mailbox_health": self.health.doc(),
            **self.roster.status(),
            "resyncs": self.resyncs,
            "throttled": self.client.throttle_count,
            "poll_interval": self.config.poll_interval,
            "folders": {
                f: {
                    "mode": "poll",
                    "connected": self.connected,
                    "last_sync": last,
                    "items": self.items.get(f, 0),
                    "last_error": self.last_error,
                }
                for f in self.config.folders
            },
        }


def make(config: GraphConfig, env: SourceEnv) -> tuple[GraphMailSource, GraphWriteback]:
    source = GraphMailSource(config, env)
    return source, GraphWriteback(source)
