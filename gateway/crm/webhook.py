"""Any system behind an HTTPS endpoint (`crm.backend: webhook`): every connector call is one
signed JSON POST to `crm.url`; the receiver answers with JSON. The documents are specified in
docs/webhook.md — keep the two in step.

- Signature: `X-CRM-Gateway-Signature: sha256=<hex>`, HMAC-SHA256 of the raw body with
  `crm.secret`; the event name is also in `X-CRM-Gateway-Event`.
- Files (each attachment and the raw .eml) travel inline as base64 up to `crm.max_inline`
  bytes each; a bigger one is sent as a URL built from `crm.attachment_url` (`{sha256}` filled
  in) where the gateway serves it. With no `attachment_url` such a mail fails permanently (and is
  quarantined, bytes kept) rather than reaching the receiver without its file.
- Lookups are `lookup` POSTs; a receiver that keeps no records answers `{"records": []}` and
  the rules then must not depend on `find` (docs/webhook.md).
- Errors: network, timeouts, 429 and 5xx → Retryable (the pipeline retries: `attach` and `note`
  carry an `idempotency_key`, so a repeat is harmless); other 4xx → Permanent with the receiver's message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Sequence
from typing import Any

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
    register_connector,
)
from gateway.crm.config_models import WebhookConfig
from gateway.crm.http import HttpClient
from gateway.errors import ConfigError, Permanent
from gateway.message import addresses

SIGNATURE_HEADER = "X-CRM-Gateway-Signature"
EVENT_HEADER = "X-CRM-Gateway-Event"
VERSION = 1


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for this raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does (Python): compare in constant time."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header or "")


class WebhookConnector:
    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        max_inline: int = 5 * 1024**2,
        attachment_url: str | None = None,
        timeout: float = 30.0,
        max_wait: float = 5.0,
    ) -> None:
        if not secret:
            raise ConfigError("crm: the webhook backend needs secret (secret_file, or ${WEBHOOK_SECRET})")
        self.url = url
        self._secret = secret
        self.max_inline = max_inline
        self.attachment_url = attachment_url
        self._http = HttpClient(url, name="webhook", timeout=timeout, max_wait=max_wait)

    def _post(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"event": event, "version": VERSION, **payload}, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body), EVENT_HEADER: event}
        response = self._http.request("POST", "", content=body, headers=headers)
        try:
            answer = response.json() if response.content else {}
        except ValueError:
            raise Permanent(f"webhook: {event}: the receiver answered HTTP {response.status_code} without JSON") from None
        if not isinstance(answer, dict):
            raise Permanent(f"webhook: {event}: the receiver's answer is not a JSON object")
        return answer

    # -- lookups -----------------------------------------------------------------------------

    def find(self, address: str, kinds: Sequence[PartyKind]) -> list[PartyRef]:
        for kind in kinds:
            if kind not in PARTY_KINDS:
                raise Permanent(f"unknown record kind {kind!r}")
        # `canonical`: the receiver compares on it (docs/webhook.md), so quoting cannot split a person
        refs = _refs(
            self._post(
                "lookup",
                {"address": address, "canonical": addresses.canonical(address) or "", "kinds": list(dict.fromkeys(kinds))},
            )
        )
        order = {k: i for i, k in enumerate(dict.fromkeys(kinds))}
        return sorted((r for r in refs if r.kind in order), key=lambda r: order[r.kind])

    def find_by_domain(self, domain: str) -> list[PartyRef]:
        return [r for r in _refs(self._post("lookup", {"domain": domain, "kinds": ["account"]})) if r.kind == "account"]

    def find_email(self, message_id: str, content_hash: str | None = None) -> EmailRef | None:
        email = self._post("find_email", {"message_id": message_id, "content_hash": content_hash}).get("email")
        if not email:
            return None
        return EmailRef(str(email["id"]), str(email.get("message_id") or message_id), str(email.get("content_hash") or ""))

    def thread_parents(self, message_ids: Sequence[str]) -> list[PartyRef]:
        ids = list(dict.fromkeys(m for m in message_ids if m))
        return _refs(self._post("thread_parents", {"message_ids": ids})) if ids else []

    # -- writes ------------------------------------------------------------------------------

    def create(self, kind: PartyKind, data: PartyData) -> PartyRef:
        if kind not in PARTY_KINDS:
            raise Permanent(f"unknown record kind {kind!r}")
        record = {
            "emails": list(data.emails),
            "first_name": data.first_name,
            "last_name": data.last_name,
            "name": data.name,
            "company": data.company,
            "domain": data.domain,
            "owner": data.owner,
            "account": data.account.as_dict() if data.account else None,
            "fields": dict(data.fields),
        }
        answer = self._post("create", {"kind": kind, "record": record})
        if not answer.get("id"):
            raise Permanent("webhook: create: the receiver's answer has no id")
        name = answer.get("name") or " ".join(p for p in (data.first_name, data.last_name) if p) or data.name
        return PartyRef(kind, str(answer["id"]), str(name))

    def attach(self, parents: Sequence[PartyRef], mail: EmailRecord, *, first_attempt: bool = False) -> EmailRef:
        payload = {
            "idempotency_key": hashlib.sha256(f"{mail.message_id}\0{mail.content_hash}".encode()).hexdigest(),
            "parents": [p.as_dict() for p in parents],
            "mail": self._mail(mail),
        }
        answer = self._post("attach", payload)
        if not answer.get("id"):
            raise Permanent("webhook: attach: the receiver's answer has no id")
        return EmailRef(str(answer["id"]), mail.message_id, mail.content_hash)

    def add_note(self, parents: Sequence[PartyRef], note: NoteData) -> NoteRef:
        """The `note` event; its `idempotency_key` is the note's key, so the receiver answers a
        replay with the same note and adds it only to the parents that lack it."""
        payload = {
            "idempotency_key": note.key,
            "parents": [p.as_dict() for p in dict.fromkeys(parents)],
            "note": {"title": note.title, "text": note.text, "owner": note.owner, "message_id": note.message_id},
        }
        answer = self._post("note", payload)
        if not answer.get("id"):
            raise Permanent("webhook: note: the receiver's answer has no id")
        return NoteRef(note.key, (str(answer["id"]),))

    def _file(self, filename: str, content_type: str, payload: bytes) -> dict[str, Any]:
        sha = hashlib.sha256(payload).hexdigest()
        item: dict[str, Any] = {"filename": filename, "content_type": content_type, "size": len(payload), "sha256": sha}
        if len(payload) <= self.max_inline:
            item["content_base64"] = base64.b64encode(payload).decode()
        elif self.attachment_url:
            item["url"] = self.attachment_url.replace("{sha256}", sha)
        else:
            raise Permanent(
                f"webhook: {filename!r} ({len(payload)} bytes) is over crm.max_inline and crm.attachment_url is not set"
            )
        return item

    def _mail(self, mail: EmailRecord) -> dict[str, Any]:
        return {
            "message_id": mail.message_id,
            "content_hash": mail.content_hash,
            "subject": mail.subject,
            "from": {"address": mail.from_address, "name": mail.from_name},
            "to": list(mail.to),
            "cc": list(mail.cc),
            "date": mail.date.isoformat(),
            "date_offset_minutes": mail.date_offset_minutes,
            "direction": mail.direction,
            "text": mail.text,
            "html": mail.html,
            "in_reply_to": list(mail.in_reply_to),
            "references": list(mail.references),
            "owner": mail.owner,
            "raw": self._file("message.eml", "message/rfc822", mail.raw),
            "attachments": [self._file(a.filename, a.content_type, a.payload) for a in mail.attachments],
        }

    def forget(self, address: str, made_by_gateway: Callable[[PartyRef], bool]) -> ForgetReport:
        refs = self.find(address, PARTY_KINDS)
        doomed = [r for r in refs if made_by_gateway(r)]
        answer = self._post(
            "forget",
            {"address": address, "delete": [r.as_dict() for r in doomed], "keep": [r.as_dict() for r in refs if r not in doomed]},
        )
        return ForgetReport(tuple(doomed), int(answer.get("emails_removed") or 0), int(answer.get("emails_unlinked") or 0))

    def check_online(self) -> None:
        """A signed `ping`; a 401/403 means the receiver has another secret."""
        self._post("ping", {})

    def close(self) -> None:
        self._http.close()


def _refs(answer: dict[str, Any]) -> list[PartyRef]:
    out = []
    for r in answer.get("records") or []:
        if r.get("kind") in PARTY_KINDS and r.get("id") is not None:
            out.append(PartyRef(r["kind"], str(r["id"]), str(r.get("name") or "")))
    return out


@register_connector("webhook")
def _factory(crm: WebhookConfig) -> WebhookConnector:
    return WebhookConnector(
        crm.url, crm.secret or "", max_inline=crm.max_inline, attachment_url=crm.attachment_url, timeout=crm.timeout
    )
