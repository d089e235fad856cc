"""A webhook receiver written from docs/webhook.md only: a real HTTP server that checks the
signature, keeps records in memory, answers every documented event, and keeps every request
it received (headers and raw body) for the tests to read."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from typing import Any

from gateway.crm.webhook import verify
from gateway.message import addresses
from tests.crm.doubles.base import HttpDouble, Reply, Request


class WebhookReceiver(HttpDouble):
    def __init__(self, secret: str, *, keeps_records: bool = True) -> None:
        super().__init__()
        self.secret = secret
        self.keeps_records = keeps_records
        self.parties: dict[str, dict[str, Any]] = {}
        self.emails: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}  # one note per key, linked to its records
        self._ids = itertools.count(1)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.log if r.body and json.loads(r.body).get("event") == name]

    def is_write(self, req: Request) -> bool:
        return req.headers.get("x-crm-gateway-event") in ("create", "note")

    def rejection(self, req: Request, message: str) -> Reply:
        return Reply(422, json.dumps({"message": message}).encode())

    def handle(self, req: Request) -> Reply:
        if req.method != "POST":
            return Reply(405, b'{"message": "POST only"}')
        if not verify(self.secret, req.body, req.headers.get("x-crm-gateway-signature")):
            return Reply(401, b'{"message": "bad signature"}')
        doc = json.loads(req.body)
        answer = getattr(self, "_" + doc["event"])(doc)
        return Reply(200, json.dumps(answer).encode())

    def _ping(self, doc: dict) -> dict:
        return {"ok": True}

    def _record(self, pid: str) -> dict:
        p = self.parties[pid]
        return {"kind": p["kind"], "id": pid, "name": p["name"]}

    def _lookup(self, doc: dict) -> dict:
        if not self.keeps_records:
            return {"records": []}
        kinds = doc.get("kinds") or ["lead", "contact", "account"]
        if "domain" in doc:
            d = addresses.domain_of("x@" + doc["domain"])
            hits = [pid for pid, p in self.parties.items() if p["kind"] == "account" and p["domain"] == d]
        else:
            k = str(doc.get("canonical") or "").casefold()  # as docs/webhook.md asks a receiver to compare
            hits = [pid for pid, p in self.parties.items() if p["kind"] in kinds and k in {addresses.key(e) for e in p["emails"]}]
        return {"records": [self._record(pid) for pid in sorted(hits, key=int)]}

    def _create(self, doc: dict) -> dict:
        r = doc["record"]
        pid = str(next(self._ids))
        name = r["name"] if doc["kind"] == "account" else " ".join(p for p in (r["first_name"], r["last_name"]) if p)
        self.parties[pid] = {
            "kind": doc["kind"],
            "name": name,
            "emails": r["emails"],
            "owner": r["owner"],
            "domain": addresses.domain_of("x@" + r["domain"]) if r["domain"] else "",
        }
        return {"id": pid, "name": name}

    def _attach(self, doc: dict) -> dict:
        mail = doc["mail"]
        same = [eid for eid, e in self.emails.items() if e["key"] == doc["idempotency_key"]]
        if same:
            eid = same[0]
        else:
            eid = str(next(self._ids))
            files = []
            for a in mail["attachments"]:
                data = base64.b64decode(a["content_base64"]) if "content_base64" in a else b""
                assert not data or hashlib.sha256(data).hexdigest() == a["sha256"]
                files.append(a)
            self.emails[eid] = {"key": doc["idempotency_key"], "mail": mail, "links": set(), "files": files}
        self.emails[eid]["links"] |= {(p["kind"], p["id"]) for p in doc["parents"]}
        return {"id": eid}

    def _note(self, doc: dict) -> dict:
        same = [nid for nid, n in self.notes.items() if n["key"] == doc["idempotency_key"]]
        nid = same[0] if same else str(next(self._ids))
        if not same:
            self.notes[nid] = {"key": doc["idempotency_key"], "note": doc["note"], "links": set()}
        self.notes[nid]["links"] |= {(p["kind"], p["id"]) for p in doc["parents"]}
        return {"id": nid}

    def _find_email(self, doc: dict) -> dict:
        for eid, e in sorted(self.emails.items(), key=lambda kv: int(kv[0])):
            m = e["mail"]
            if m["message_id"] == doc["message_id"] and doc.get("content_hash") in (None, m["content_hash"]):
                return {"email": {"id": eid, "message_id": m["message_id"], "content_hash": m["content_hash"]}}
        return {"email": None}

    def _thread_parents(self, doc: dict) -> dict:
        pids = dict.fromkeys(
            pid for e in self.emails.values() if e["mail"]["message_id"] in doc["message_ids"] for _, pid in sorted(e["links"])
        )
        return {"records": [self._record(pid) for pid in pids if pid in self.parties]}

    def _forget(self, doc: dict) -> dict:
        for r in doc["delete"]:
            self.parties.pop(r["id"], None)
        gone = {r["id"] for r in doc["delete"]}
        removed = 0
        for eid in list(self.emails):
            e = self.emails[eid]
            e["links"] = {link for link in e["links"] if link[1] not in gone}
            if not e["links"]:
                del self.emails[eid]
                removed += 1
        for nid in list(self.notes):  # the records deleted take their notes
            self.notes[nid]["links"] = {link for link in self.notes[nid]["links"] if link[1] not in gone}
            if not self.notes[nid]["links"]:
                del self.notes[nid]
        return {"emails_removed": removed, "emails_unlinked": 0}
