"""vtiger CRM and vtenext through their webservice (`crm.backend: vtiger`, `dialect: vtiger|vtenext`).

The wire (docs/vtiger.md): `webservice.php` with `getchallenge` → `login`
(accessKey = md5(token + access key)) → `sessionName` on every call; `query` (VTQL),
`create`, `retrieve`, `describe`, `retrieve_related`, `delete`, and `add_related` (vtenext:
`relate`). Leads, Contacts and Accounts are the records; the mail is an `Emails` record
(`parent_id` = the first record, the others related to it) and every attachment, and the raw
.eml, a `Documents` record with the file, related to the email. A rule's note is a
`ModComments` record (`commentcontent`, `related_to` the record, `assigned_user_id`).

Safety of VTQL: vtiger pastes string literals into its SQL. A quote is doubled; an address
with a control character is refused; a backslash (MySQL's escape character) never reaches a
query: it is replaced by the `like` wildcard `%` and the rows are filtered here. Every lookup
is filtered here by the exact, case-insensitive address anyway, because MySQL's collation also
ignores accents (`zoe` = `zoë`) and a `like` pattern matches more than the one address.
Tested against tests/crm/doubles/vtiger_double.py — no vtiger can run here.

The webservice and its VTQL literals are in vtiger_ws.py, the record mapping in
vtiger_records.py, the record search and who may see a record in vtiger_search.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from gateway.crm import note_marker, vtiger_search
from gateway.crm.base import (
    PARTY_KINDS,
    EmailRecord,
    EmailRef,
    ForgetReport,
    NoteData,
    NoteRef,
    PartyData,
    PartyKind,
    PartyRef,
    RecordHit,
    register_connector,
)
from gateway.crm.config_models import VtigerConfig
from gateway.crm.vtiger_records import EMAIL_FIELDS, MODULES, crmid, party_ref, website_host, wsid
from gateway.crm.vtiger_ws import Webservice, literal, matches
from gateway.errors import ConfigError, Permanent
from gateway.message import addresses

ID_FIELDS = ("Message-ID", "Content hash")  # labels of the two custom fields on Emails
_RAW_TAG = "crm-gateway raw message"


class VtigerConnector:
    name = "vtiger"

    def __init__(
        self, url: str, username: str, access_key: str, *, dialect: str = "vtiger", timeout: float = 30.0, max_wait: float = 5.0
    ) -> None:
        if dialect not in ("vtiger", "vtenext"):
            raise ConfigError(f"crm.dialect: {dialect!r} is neither vtiger nor vtenext")
        self.dialect = dialect
        self.username = username
        self._ws = Webservice(url, username, access_key, dialect=dialect, timeout=timeout, max_wait=max_wait)
        self._email_cf: tuple[str, str] | None = None
        self._owners: dict[str, str] = {}

    # -- the webservice (gateway/crm/vtiger_ws.py) -------------------------------------------

    def _email_fields(self) -> tuple[str, str]:
        if self._email_cf is None:
            described = self._ws.call("GET", "describe", {"elementType": "Emails"})
            by_label = {str(f.get("label", "")).casefold(): f["name"] for f in described.get("fields", [])}
            missing = [label for label in ID_FIELDS if label.casefold() not in by_label]
            if missing:
                raise Permanent(
                    f"{self.dialect}: the Emails module needs custom text fields labelled {', '.join(repr(m) for m in missing)}"
                    " (Settings → Module Layouts & Fields → Emails); see docs/vtiger.md"
                )
            self._email_cf = (by_label[ID_FIELDS[0].casefold()], by_label[ID_FIELDS[1].casefold()])
        return self._email_cf

    def _owner(self, owner: str) -> str:
        if not owner:
            self._ws.login()
            return self._ws.user_id
        if owner not in self._owners:
            rows = [
                r
                for r in self._ws.query("Users", matches("email1", owner))
                if addresses.key(r.get("email1", "")) == addresses.key(owner)
            ]
            self._ws.login()
            self._owners[owner] = rows[0]["id"] if rows else self._ws.user_id
        return self._owners[owner]

    # -- lookups -----------------------------------------------------------------------------

    def find(self, address: str, kinds: Sequence[PartyKind]) -> list[PartyRef]:
        k = addresses.key(address)
        if not k:
            return []
        spellings = addresses.spellings(address)  # quoted and plain: a form keeps it plain
        found: list[PartyRef] = []
        for kind in dict.fromkeys(kinds):
            if kind not in MODULES:
                raise Permanent(f"unknown record kind {kind!r}")
            fields = EMAIL_FIELDS[kind]
            rows = self._ws.query(MODULES[kind], " or ".join(matches(f, v) for v in spellings for f in fields))
            hits = [r for r in rows if any(addresses.key(str(r.get(f) or "")) == k for f in fields)]
            found.extend(party_ref(kind, r) for r in sorted(hits, key=lambda r: crmid(r["id"])))
        return found

    def find_by_domain(self, domain: str) -> list[PartyRef]:
        d = addresses.domain_of("x@" + domain.strip().lstrip("@"))
        if not d:
            return []
        rows = self._ws.query("Accounts", "website like " + literal(f"%{d}%".replace(chr(92), "%")))
        hits = [r for r in rows if website_host(str(r.get("website") or "")) == d]
        return [party_ref("account", r) for r in sorted(hits, key=lambda r: crmid(r["id"]))]

    def search(self, text: str, kinds: Sequence[PartyKind], users: frozenset[str] | None, limit: int) -> list[RecordHit]:
        """Leads, Contacts and Accounts by name, address or website, those `users` may see
        (gateway/crm/vtiger_search.py: assigned to one of them, or to the gateway's user)."""
        return vtiger_search.search(self._ws, text, kinds, users, limit)

    def visible_to(self, ref: PartyRef, users: frozenset[str]) -> bool:
        return vtiger_search.visible_to(self._ws, ref, users)

    def find_email(self, message_id: str, content_hash: str | None = None) -> EmailRef | None:
        rows = self._emails(message_id, content_hash)
        return EmailRef(rows[0]["id"], message_id, rows[0].get(self._email_fields()[1], "")) if rows else None

    def _emails(self, message_id: str, content_hash: str | None) -> list[dict[str, Any]]:
        mid_f, hash_f = self._email_fields()
        where = matches(mid_f, message_id)
        if content_hash is not None:
            where += " and " + matches(hash_f, content_hash)
        rows = [r for r in self._ws.query("Emails", where) if r.get(mid_f) == message_id]
        if content_hash is not None:
            rows = [r for r in rows if r.get(hash_f) == content_hash]
        return sorted(rows, key=lambda r: crmid(r["id"]))

    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        found: dict[str, PartyRef] = {}
        for mid in dict.fromkeys(m for m in message_ids if m):
            for email in self._emails(mid, None):
                for kind, module in MODULES.items():
                    for r in self._ws.related(email["id"], module):
                        found.setdefault(r["id"], party_ref(kind, r))
        return list(found.values())

    # -- writes ------------------------------------------------------------------------------

    def create(self, kind: PartyKind, data: PartyData) -> PartyRef:
        if kind not in MODULES:
            raise Permanent(f"unknown record kind {kind!r}")
        element: dict[str, Any] = {"assigned_user_id": self._owner(data.owner)}
        emails = [addresses.normalize(e) for e in data.emails if addresses.normalize(e)]
        for f, e in zip(EMAIL_FIELDS[kind], emails, strict=False):
            element[f] = e
        if len(emails) > 2:
            element["description"] = "Other addresses: " + ", ".join(emails[2:])
        if kind == "account":
            element.update(accountname=data.name or data.domain, website=data.domain)
        else:
            local = emails[0].rsplit("@", 1)[0] if emails else "unknown"
            element.update(firstname=data.first_name, lastname=data.last_name or data.name or local)
            if kind == "lead":
                element["company"] = data.company or (emails[0].rsplit("@", 1)[-1] if emails else "-")
            elif data.account is not None:
                element["account_id"] = wsid(data.account)
        element.update(data.fields)
        record = self._ws.call("POST", "create", {"elementType": MODULES[kind], "element": json.dumps(element)})
        return party_ref(kind, record)

    def attach(self, parents: Sequence[PartyRef], mail: EmailRecord, *, first_attempt: bool = False) -> EmailRef:
        targets = list(dict.fromkeys(wsid(p) for p in parents))
        mid_f, hash_f = self._email_fields()
        existing = self._emails(mail.message_id, mail.content_hash)
        if existing:
            email_id = existing[0]["id"]
        else:
            when = mail.date
            element = {
                "subject": mail.subject or "(no subject)",
                "description": mail.html or mail.text,
                "from_email": mail.from_address,
                "saved_toid": json.dumps(list(mail.to)),
                "ccmail": json.dumps(list(mail.cc)),
                "date_start": when.strftime("%Y-%m-%d"),
                "time_start": when.strftime("%H:%M:%S"),
                "activitytype": "Emails",
                "email_flag": "SAVED",
                "assigned_user_id": self._owner(mail.owner),
                mid_f: mail.message_id,
                hash_f: mail.content_hash,
            }
            if targets:
                element["parent_id"] = targets[0]
            email_id = self._ws.call("POST", "create", {"elementType": "Emails", "element": json.dumps(element)})["id"]
        linked = {r["id"] for module in {MODULES[p.kind] for p in parents} for r in self._ws.related(email_id, module)}
        for target in targets:
            if target not in linked:
                self._ws.relate(target, email_id, "Emails")
        self._store_files(email_id, mail)
        return EmailRef(email_id, mail.message_id, mail.content_hash)

    def _store_files(self, email_id: str, mail: EmailRecord) -> None:
        """Every attachment (and the raw .eml) as a Document related to the email, each once."""
        stored = {str(d.get("notecontent") or "") for d in self._ws.related(email_id, "Documents")}
        files = [
            (a.filename or "attachment", a.content_type, a.payload, f"sha256:{hashlib.sha256(a.payload).hexdigest()}")
            for a in mail.attachments
        ]
        if mail.raw:
            files.append(("message.eml", "message/rfc822", mail.raw, f"{_RAW_TAG} sha256:{hashlib.sha256(mail.raw).hexdigest()}"))
        for position, (name, ctype, payload, tag) in enumerate(files):
            tag = f"{tag} #{position}"
            if tag in stored:
                continue
            element = {
                "notes_title": name,
                "filename": name,
                "filelocationtype": "I",
                "filestatus": "1",
                "filesize": str(len(payload)),
                "filetype": ctype or "application/octet-stream",
                "notecontent": tag,
                "assigned_user_id": self._owner(mail.owner),
            }
            doc = self._ws.call(
                "POST",
                "create",
                {"elementType": "Documents", "element": json.dumps(element)},
                files={"filename": (name, payload, ctype or "application/octet-stream")},
            )
            self._ws.relate(email_id, doc["id"], "Documents")

    def add_note(self, parents: Sequence[PartyRef], note: NoteData) -> NoteRef:
        """A `ModComments` record on each parent, once per key. A comment has no field for the
        key: it travels in the content's trailing marker (gateway/crm/note_marker.py), and a
        replay first queries the parents' comments holding that marker (the title leads the
        content; the mail's Message-ID is not kept)."""
        targets = list(dict.fromkeys(wsid(p) for p in parents))
        if not targets:
            return NoteRef(note.key)
        tag = note_marker.tag(note.key)
        where = f"related_to in ({', '.join(literal(t) for t in targets)}) and commentcontent like {literal('%' + note_marker.search_text(note.key) + '%')}"
        have: dict[str, str] = {}
        for row in self._ws.query("ModComments", where):
            parsed = note_marker.parse(str(row.get("commentcontent") or ""))
            if parsed is not None and parsed.tag == tag:
                have.setdefault(str(row.get("related_to")), str(row["id"]))
        content = note_marker.compose(note)
        for target in targets:
            if target not in have:
                element = {"commentcontent": content, "related_to": target, "assigned_user_id": self._owner(note.owner)}
                have[target] = self._ws.call("POST", "create", {"elementType": "ModComments", "element": json.dumps(element)})[
                    "id"
                ]
        return NoteRef(note.key, tuple(have[t] for t in targets))

    def forget(self, address: str, made_by_gateway: Callable[[PartyRef], bool]) -> ForgetReport:
        """Delete the records the gateway made for this address, their comments (vtiger keeps a
        deleted record's comments otherwise) and the mails only they had. Records a person made
        are kept with their mail and comments (the webservice cannot unlink a mail)."""
        doomed = [r for r in self.find(address, PARTY_KINDS) if made_by_gateway(r)]
        emails: dict[str, None] = {}
        for ref in doomed:
            emails.update((e["id"], None) for e in self._ws.related(ref.id, "Emails"))
            for comment in self._ws.query("ModComments", matches("related_to", ref.id)):
                self._ws.call("POST", "delete", {"id": comment["id"]})
            self._ws.call("POST", "delete", {"id": ref.id})
        removed = 0
        for email_id in emails:
            if not any(self._ws.related(email_id, module) for module in MODULES.values()):
                for doc in self._ws.related(email_id, "Documents"):
                    self._ws.call("POST", "delete", {"id": doc["id"]})
                self._ws.call("POST", "delete", {"id": email_id})
                removed += 1
        return ForgetReport(parties=tuple(doomed), emails_removed=removed, emails_unlinked=len(emails) - removed)

    def check_online(self) -> None:
        """Log in afresh and check the Emails custom fields; raise with a clear message."""
        self._ws.forget_session()
        self._ws.login()
        self._email_fields()

    def close(self) -> None:
        self._ws.close()


@register_connector("vtiger")
def _factory(crm: VtigerConfig) -> VtigerConnector:
    if not crm.username or not crm.access_key:
        raise ConfigError("crm: the vtiger backend needs username and access_key (access_key_file, or ${VTIGER_ACCESS_KEY})")
    return VtigerConnector(crm.url, crm.username, crm.access_key, dialect=crm.dialect or "vtiger", timeout=crm.timeout)
