"""The embedded CRM as plain data: the `crm dump --json` document of SPEC.md."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from gateway.crm.sql_models import PARTY_MODELS, Email, EmailAttachment, EmailLink, Note, PartyEmail

pe, em, ln, at, nt = (m.__table__ for m in (PartyEmail, Email, EmailLink, EmailAttachment, Note))
TABLES: dict[str, sa.Table] = {kind: model.__table__ for kind, model in PARTY_MODELS.items()}  # type: ignore[misc]


def dump(conn: sa.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every account, contact, lead, email and note, ids as ints, in id order."""
    emails_of: dict[tuple[str, int], list[str]] = {}
    for row in conn.execute(sa.select(pe).order_by(pe.c.id)):
        emails_of.setdefault((row.kind, row.party_id), []).append(row.address)
    out: dict[str, list[dict[str, Any]]] = {}
    for kind, key in (("account", "accounts"), ("contact", "contacts"), ("lead", "leads")):
        rows = conn.execute(sa.select(TABLES[kind]).order_by(TABLES[kind].c.id)).mappings()
        out[key] = [party_dict(kind, row, emails_of.get((kind, row["id"]), [])) for row in rows]
    links: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(sa.select(ln).order_by(ln.c.id)):
        links.setdefault(row.email_id, []).append({"kind": row.kind, "id": row.party_id})
    files: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(sa.select(at).order_by(at.c.email_id, at.c.position)):
        files.setdefault(row.email_id, []).append(
            {"filename": row.filename, "content_type": row.content_type, "size": row.size, "sha256": row.sha256}
        )
    rows = conn.execute(sa.select(em).order_by(em.c.id)).mappings()
    out["emails"] = [email_dict(row, links.get(row["id"], []), files.get(row["id"], [])) for row in rows]
    out["notes"] = [
        {
            "id": row["id"],
            "on": {"kind": row["kind"], "id": row["party_id"]},
            "title": row["title"],
            "text": row["text"],
            "owner": row["owner"],
            "message_id": row["message_id"],
            "key": row["key"],
            "created_at": row["created_at"].isoformat(),
        }
        for row in conn.execute(sa.select(nt).order_by(nt.c.id)).mappings()
    ]
    return out


def party_dict(kind: str, row: Any, emails: list[str]) -> dict[str, Any]:
    base = {"id": row["id"]}
    if kind == "account":
        base |= {"name": row["name"], "domain": row["domain"], "emails": emails}
    else:
        base |= {"first_name": row["first_name"], "last_name": row["last_name"], "emails": emails}
        if kind == "lead":
            base |= {"company": row["company"], "status": row["status"]}
        base["account_id"] = row["account_id"]
    return base | {
        "owner": row["owner"],
        "fields": dict(row["fields"] or {}),
        "created_by_gateway": row["created_by_gateway"],
        "created_at": row["created_at"].isoformat(),
    }


def email_dict(row: Any, links: list[dict[str, Any]], files: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "message_id": row["message_id"],
        "content_hash": row["content_hash"],
        "version_of": row["version_of"],
        "subject": row["subject"],
        "from": row["from_address"],
        "from_name": row["from_name"],
        "to": list(row["to_addresses"] or []),
        "cc": list(row["cc_addresses"] or []),
        "date": row["date"].isoformat(),
        "date_offset_minutes": row["date_offset_minutes"],
        "direction": row["direction"],
        "text": row["text"],
        "html": row["html"],
        "owner": row["owner"],
        "raw_sha256": row["raw_sha256"],
        "raw_size": row["raw_size"],
        "links": links,
        "attachments": files,
    }
