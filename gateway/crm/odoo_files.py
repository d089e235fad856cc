"""The files of a mail posted to Odoo: its attachments and its raw .eml as `ir.attachment`
rows on one record (the mail's first), shared by the `mail.message` of each record it is on.
Each row's description tags it (a file's sha256 and place, or the raw mail's content hash), so
a repeated attach finds the rows it made and makes none twice."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from gateway.crm.base import EmailRecord

RAW = "crm-gateway raw message; content hash "


def files(call: Callable[..., Any], home: tuple[str, int], mail: EmailRecord) -> list[int]:
    """The ir.attachment ids of this mail's files and raw .eml on `home` (model, id), creating
    the missing ones through `call` (the connector's `call(model, method, ids, **params)`)."""
    files = [
        (a.filename or "attachment", a.content_type, a.payload, f"sha256:{hashlib.sha256(a.payload).hexdigest()} #{i}")
        for i, a in enumerate(mail.attachments)
    ]
    files.append(("message.eml", "message/rfc822", mail.raw, RAW + mail.content_hash))
    model, res_id = home
    have = call(
        "ir.attachment",
        "search_read",
        domain=[["res_model", "=", model], ["res_id", "=", res_id], ["description", "in", [f[3] for f in files]]],
        fields=["id", "description"],
        order="id",
    )
    by_tag = {a["description"]: a["id"] for a in reversed(have)}
    out = []
    for name, ctype, payload, tag in files:
        if tag not in by_tag:
            vals = {
                "name": name,
                "datas": base64.b64encode(payload).decode(),
                "mimetype": ctype or "application/octet-stream",
                "res_model": model,
                "res_id": res_id,
                "description": tag,
            }
            by_tag[tag] = call("ir.attachment", "create", vals_list=[vals])[0]
        out.append(by_tag[tag])
    return out
