"""Odoo through its external API (`crm.backend: odoo`).

Two wires, one set of calls (docs/odoo.md): the JSON-2 API of Odoo 19+
(`POST /json/2/<model>/<method>`, `Authorization: bearer <api_key>`, parameters by name) and
JSON-RPC (`/jsonrpc`, `common.authenticate` then `object.execute_kw`) for older servers.
`crm.protocol` picks one; by default JSON-2 when an `api_key` is set, JSON-RPC with a password.

Records: contacts and accounts are `res.partner` (`is_company`), leads are `crm.lead`. A mail is
a `mail.message` posted with `message_post` on each record's chatter (Odoo keeps a message per
record), carrying the RFC Message-ID; its files — and the raw .eml, whose description holds the
gateway's content hash — are `ir.attachment` rows shared by those messages. The messages of one
(Message-ID, content hash) are one email for the gateway: its id is the first message's.
A rule's note is a `message_post` of an internal note (`message_type="comment"`,
`subtype_xmlid="mail.mt_note"`) whose `message_id` carries the note's key.

Lookups use `=ilike` with `%`, `_` and `\\` escaped and `%…%` around each spelling of the
address (quoted and plain local part; a partner's `email` may hold several addresses,
comma-separated); the rows are then filtered here by the exact, case-insensitive canonical
address. Tested against tests/crm/doubles/odoo_double.py.

The wires are in odoo_rpc.py, the record mapping in odoo_records.py, the notes in odoo_notes.py,
the record search and who may see a record in odoo_search.py, a mail's files in odoo_files.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.crm import odoo_files, odoo_notes, odoo_search
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
from gateway.crm.config_models import OdooConfig
from gateway.crm.http import HttpClient
from gateway.crm.odoo_contacts import OdooContactSync
from gateway.crm.odoo_files import RAW
from gateway.crm.odoo_records import (
    EMAIL_FIELD,
    MODEL,
    PARTY_FIELDS,
    address_keys,
    escape_like,
    fields_of,
    kind_of,
    party_ref,
    record_id,
    website_host,
)
from gateway.crm.odoo_rpc import Json2, JsonRpc
from gateway.errors import ConfigError, Permanent
from gateway.message import addresses


class OdooConnector:
    name = "odoo"

    def __init__(
        self,
        url: str,
        *,
        database: str | None,
        username: str | None,
        api_key: str | None = None,
        password: str | None = None,
        protocol: str | None = None,
        timeout: float = 30.0,
        max_wait: float = 5.0,
    ) -> None:
        protocol = protocol or ("json2" if api_key else "jsonrpc")
        self._http = HttpClient(url.rstrip("/") + "/", name="odoo", timeout=timeout, max_wait=max_wait)
        secret = api_key or password or ""
        if not secret:
            raise ConfigError("crm: the odoo backend needs api_key (or password)")
        if protocol == "json2":
            self._api: Json2 | JsonRpc = Json2(self._http, database, secret)
        else:
            if not database or not username:
                raise ConfigError("crm: odoo over JSON-RPC needs database and username")
            self._api = JsonRpc(self._http, database, username, secret)
        self.protocol = protocol
        self._owners: dict[str, int | None] = {}

    def _call(self, model: str, method: str, ids: list[int] | None = None, **params: Any) -> Any:
        return self._api.call(model, method, ids, **params)

    # -- lookups -----------------------------------------------------------------------------

    def find(self, address: str, kinds: Sequence[PartyKind]) -> list[PartyRef]:
        k = addresses.key(address)
        if not k:
            return []
        # quoted and plain spellings alike (a form keeps the local part plain); `|` is Odoo's
        # prefix OR, one fewer than there are terms
        terms = [["=ilike", "%" + escape_like(s) + "%"] for s in addresses.spellings(address)]
        found: list[PartyRef] = []
        for kind in dict.fromkeys(kinds):
            if kind not in MODEL:
                raise Permanent(f"unknown record kind {kind!r}")
            model = MODEL[kind]
            domain: list[Any] = ["|"] * (len(terms) - 1) + [[EMAIL_FIELD[model], op, p] for op, p in terms]
            if model == "res.partner":
                domain.append(["is_company", "=", kind == "account"])
            rows = self._call(model, "search_read", domain=domain, fields=fields_of(model), order="id")
            found += [party_ref(kind, r) for r in rows if k in address_keys(r.get(EMAIL_FIELD[model]))]
        return found

    def find_by_domain(self, domain: str) -> list[PartyRef]:
        d = addresses.domain_of("x@" + domain.strip().lstrip("@"))
        if not d:
            return []
        rows = self._call(
            "res.partner",
            "search_read",
            domain=[["is_company", "=", True], ["website", "=ilike", "%" + escape_like(d) + "%"]],
            fields=PARTY_FIELDS,
            order="id",
        )
        return [party_ref("account", r) for r in rows if website_host(r.get("website") or "") == d]

    def search(self, text: str, kinds: Sequence[PartyKind], users: frozenset[str] | None, limit: int) -> list[RecordHit]:
        """Partners and leads by name, address or website, those `users` may see
        (gateway/crm/odoo_search.py: unassigned or theirs by `user_id`)."""
        return odoo_search.search(self._call, text, kinds, users, limit)

    def visible_to(self, ref: PartyRef, users: frozenset[str]) -> bool:
        return odoo_search.visible_to(self._call, ref, users)

    def _messages(self, message_ids: Sequence[str]) -> list[dict[str, Any]]:
        return self._call(
            "mail.message",
            "search_read",
            domain=[["message_id", "in", list(message_ids)]],
            fields=["id", "model", "res_id", "message_id", "attachment_ids"],
            order="id",
        )

    def _versions(self, message_id: str) -> dict[str, list[dict[str, Any]]]:
        """The messages of this Message-ID grouped by content hash (from their raw .eml)."""
        messages = self._messages([message_id])
        att_ids = sorted({a for m in messages for a in m["attachment_ids"]})
        atts = {a["id"]: a for a in self._call("ir.attachment", "read", att_ids, fields=["id", "description"])} if att_ids else {}
        out: dict[str, list[dict[str, Any]]] = {}
        for m in messages:
            tags = [str(atts.get(a, {}).get("description") or "") for a in m["attachment_ids"]]
            h = next((t.removeprefix(RAW) for t in tags if t.startswith(RAW)), "")
            out.setdefault(h, []).append(m)
        return out

    def find_email(self, message_id: str, content_hash: str | None = None) -> EmailRef | None:
        versions = self._versions(message_id)
        if content_hash is not None:
            group = versions.get(content_hash)
            return EmailRef(str(group[0]["id"]), message_id, content_hash) if group else None
        firsts = sorted(((g[0]["id"], h) for h, g in versions.items()))
        return EmailRef(str(firsts[0][0]), message_id, firsts[0][1]) if firsts else None

    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        ids = list(dict.fromkeys(m for m in message_ids if m))
        if not ids:
            return []
        pairs = list(dict.fromkeys((m["model"], m["res_id"]) for m in self._messages(ids) if m["model"] in EMAIL_FIELD))
        refs: list[PartyRef] = []
        for model in EMAIL_FIELD:
            want = [rid for mdl, rid in pairs if mdl == model]
            if want:
                rows = {r["id"]: r for r in self._call(model, "read", want, fields=fields_of(model))}
                refs += [party_ref(kind_of(model, rows[rid]), rows[rid]) for rid in want if rid in rows]
        return refs

    # -- writes ------------------------------------------------------------------------------

    def _owner(self, owner: str) -> int | None:
        if owner and owner not in self._owners:
            rows = self._call(
                "res.users", "search_read", domain=[["login", "=ilike", escape_like(owner)]], fields=["id", "login"]
            )
            self._owners[owner] = rows[0]["id"] if rows else None
        return self._owners.get(owner) if owner else None

    def create(self, kind: PartyKind, data: PartyData) -> PartyRef:
        if kind not in MODEL:
            raise Permanent(f"unknown record kind {kind!r}")
        emails = [addresses.normalize(e) for e in data.emails if addresses.normalize(e)]
        person = " ".join(p for p in (data.first_name, data.last_name) if p) or data.name or (emails[0] if emails else "")
        vals: dict[str, Any] = {}
        if (uid := self._owner(data.owner)) is not None:
            vals["user_id"] = uid
        if kind == "lead":
            vals.update(
                name=person or data.company or "(unnamed lead)",
                contact_name=person,
                partner_name=data.company,
                email_from=", ".join(emails),
                type="lead",
            )
        elif kind == "contact":
            vals.update(name=person or "(unnamed)", email=", ".join(emails), is_company=False)
            if data.account is not None:
                vals["parent_id"] = record_id(data.account)
        else:
            vals.update(name=data.name or data.domain, is_company=True, website=data.domain, email=", ".join(emails) or False)
        vals.update(data.fields)
        [new_id] = self._call(MODEL[kind], "create", vals_list=[vals])
        return PartyRef(kind, str(new_id), vals["name"])

    def attach(self, parents: Sequence[PartyRef], mail: EmailRecord, *, first_attempt: bool = False) -> EmailRef:
        targets = list(dict.fromkeys((MODEL[p.kind], record_id(p)) for p in parents))
        group = self._versions(mail.message_id).get(mail.content_hash, [])
        if not targets and not group:
            raise Permanent("odoo: a mail needs a record to be posted on")
        home = (group[0]["model"], group[0]["res_id"]) if group else targets[0]  # where its files live
        att_ids = odoo_files.files(self._call, home, mail)
        for message in group:  # complete a message stored before all its files were
            missing = [a for a in att_ids if a not in message["attachment_ids"]]
            if missing:
                self._call("mail.message", "write", [message["id"]], vals={"attachment_ids": [[4, a] for a in missing]})
        posted = {(m["model"], m["res_id"]) for m in group}
        ids = [m["id"] for m in group]
        for model, res_id in targets:
            if (model, res_id) not in posted:
                ids.append(
                    self._call(
                        model,
                        "message_post",
                        [res_id],
                        body=mail.html or mail.text,
                        subject=mail.subject,
                        message_type="email",
                        email_from=mail.from_address,
                        message_id=mail.message_id,
                        attachment_ids=att_ids,
                    )
                )
        return EmailRef(str(min(ids)), mail.message_id, mail.content_hash)

    def add_note(self, parents: Sequence[PartyRef], note: NoteData) -> NoteRef:
        """An internal note (`mail.mt_note`) in each record's chatter, once per key
        (gateway/crm/odoo_notes.py)."""
        return odoo_notes.add_note(self._call, [(MODEL[p.kind], record_id(p)) for p in parents], note)

    def forget(self, address: str, made_by_gateway: Callable[[PartyRef], bool]) -> ForgetReport:
        """Unlink the records the gateway made for this address (Odoo removes their chatter,
        notes included). Records a person made keep their messages."""
        doomed = [r for r in self.find(address, PARTY_KINDS) if made_by_gateway(r)]
        removed = 0
        for ref in doomed:
            model = MODEL[ref.kind]
            removed += len(
                self._call(
                    "mail.message",
                    "search_read",
                    fields=["id"],
                    domain=[["model", "=", model], ["res_id", "=", int(ref.id)], ["message_type", "=", "email"]],
                )
            )
            self._call(model, "unlink", [int(ref.id)])
        return ForgetReport(parties=tuple(doomed), emails_removed=removed)

    def check_online(self) -> None:
        """One authenticated call; raises with a clear message when unreachable or refused."""
        self._api.check()

    def contact_sync(self) -> OdooContactSync:
        """The contact sync's side of Odoo (gateway/crm/odoo_contacts.py)."""
        return OdooContactSync(self._call, self._owner)

    def close(self) -> None:
        self._http.close()


@register_connector("odoo")
def _factory(crm: OdooConfig) -> OdooConnector:
    return OdooConnector(
        crm.url,
        database=crm.database,
        username=crm.username,
        api_key=crm.api_key,
        password=crm.password,
        protocol=crm.protocol,
        timeout=crm.timeout,
    )
