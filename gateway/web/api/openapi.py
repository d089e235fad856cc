"""The API's OpenAPI 3 document (`GET /api/v1/openapi.json`), written as data: the contract
the console and the Outlook add-in are built against. A test checks it lists every route."""

from __future__ import annotations

from typing import Any

VERSION = "1"

_ERROR = {
    "description": "what went wrong, in words a person can act on",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_ERRORS = {str(code): _ERROR for code in (400, 401, 403, 404, 409)}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(
    summary: str, ok: dict[str, Any], *, params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": ok, **_ERRORS}}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _q(name: str, description: str, kind: str = "string", *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": {"type": kind}}


_ID = {"name": "id", "in": "path", "required": True, "description": "the message's ledger id", "schema": {"type": "integer"}}
_OBJ = {"type": "object"}
_PAGE = [_q("limit", "items per page, 1 to 500 (default 50)", "integer"), _q("offset", "items to skip", "integer")]
_RECORD = {"type": "string", "description": "KIND:ID of a CRM record, e.g. contact:12", "example": "contact:12"}

PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/me": {
        "get": _op(
            "Who is signed in: name, role, mailboxes, and the CSRF token a browser's writes carry (X-CSRF-Token)",
            _json("the principal", _OBJ),
        )
    },
    "/api/v1/status": {
        "get": _op("The gateway's status document (`status --json`); a user sees their own sources", _json("status", _OBJ))
    },
    "/api/v1/messages": {
        "get": _op(
            "Messages, newest first, filtered",
            _json("a page of messages", {"$ref": "#/components/schemas/MessagePage"}),
            params=[
                _q("state", "one state or several, comma-separated (done, review, quarantined, ...)"),
                _q("source", "a configured source's name"),
                _q("folder", "a folder a copy lies in"),
                _q("sender", "part of the From address"),
                _q("since", "first seen at or after (ISO date or time; UTC unless an offset is given)"),
                _q("until", "first seen before (ISO date or time)"),
                _q("q", "part of the subject, the From address or the Message-ID"),
                _q("limit", "how many (1-500, default 50)", "integer"),
                _q("offset", "how many to skip", "integer"),
            ],
        )
    },
    "/api/v1/messages/{id}": {
        "get": _op(
            "One message: headers, trace (explain), copies and the CRM records it is on", _json("the message", _OBJ), params=[_ID]
        )
    },
    "/api/v1/messages/lookup": {
        "get": _op(
            "The message with this Message-ID (`known`: true). A mail the gateway never handled that a mailbox"
            " of the asker holds: `known` false, `can_link` true, `mailbox` where it lies, `crm_records` empty, so it"
            " can be filed with POST /api/v1/link. 404 in words when neither the ledger nor such a mailbox has it",
            _json(
                "the message",
                {
                    "type": "object",
                    "properties": {
                        "known": {"type": "boolean", "description": "whether the gateway has handled it"},
                        "can_link": {"type": "boolean"},
                        "mailbox": {"type": "string", "description": "source:account/folder, when not known"},
                        "crm_records": {"type": "array", "items": _OBJ},
                    },
                },
            ),
            params=[
                _q("message_id", "the Message-ID, with or without <>", required=True),
                _q("mailbox", "for a mail not handled: the mailbox (address or account) to search first"),
            ],
        )
    },
    "/api/v1/review": {
        "get": _op(
            "Messages waiting for a person, oldest first, with their candidate records and what each matched; `total` for paging",
            _json("items", _OBJ),
            params=_PAGE,
        )
    },
    "/api/v1/review/{id}/resolve": {
        "post": _op(
            "Attach the message to a record (a candidate or any record the asker may see), then tag it",
            _json("the new state", _OBJ),
            params=[_ID],
            body={"type": "object", "required": ["record"], "properties": {"record": _RECORD}},
        )
    },
    "/api/v1/review/{id}/create": {
        "post": _op(
            "Create a record of `kind` for the message's counterpart, attach the message, tag it",
            _json("the new state", _OBJ),
            params=[_ID],
            body={
                "type": "object",
                "required": ["kind"],
                "properties": {"kind": {"type": "string", "enum": ["lead", "contact", "account"]}},
            },
        )
    },
    "/api/v1/quarantine": {
        "get": _op("Messages that failed for good, and why, oldest first; `total` for paging", _json("items", _OBJ), params=_PAGE)
    },
    "/api/v1/quarantine/{id}/retry": {
        "post": _op(
            "Send one quarantined message through the current rules again",
            _json("each message's new state", _OBJ),
            params=[_ID],
            body=_OBJ,
        )
    },
    "/api/v1/quarantine/retry": {
        "post": _op(
            "Send every quarantined message of one reason through the rules again",
            _json("each message's new state", _OBJ),
            body={
                "type": "object",
                "required": ["reason"],
                "properties": {"reason": {"type": "string", "description": "exactly as listed"}},
            },
        )
    },
    "/api/v1/crm/search": {
        "get": _op(
            "CRM records by name, address or domain (those the asker may see)",
            _json("records", _OBJ),
            params=[_q("q", "at least 2 characters", required=True), _q("kind", "lead, contact or account")],
        )
    },
    "/api/v1/link": {
        "post": _op(
            "File a message on a record: a handled one (by `message`, its ledger id, or `message_id`), or a mail"
            " the gateway never handled, fetched by `message_id` from a mailbox the asker owns (an admin: any) and"
            " filed without the rules, then tagged as synced mail; linking twice leaves one link. 404 in words when"
            " no such mailbox holds it",
            _json(
                "the link",
                {
                    "type": "object",
                    "properties": {
                        "message": {"type": "integer"},
                        "record": _RECORD,
                        "email_id": {"type": "string"},
                        "fetched_from": {"type": "string", "description": "source:account/folder, for a mail fetched now"},
                    },
                },
            ),
            body={
                "type": "object",
                "required": ["record"],
                "properties": {
                    "record": _RECORD,
                    "message": {"type": "integer", "description": "the ledger id of a handled message"},
                    "message_id": {"type": "string", "description": "the Message-ID, with or without <>"},
                    "mailbox": {
                        "type": "string",
                        "description": "for a mail not handled: the mailbox (address or account) to search first",
                    },
                },
            },
        )
    },
    "/api/v1/reconcile": {
        "get": _op("The last reconcile's findings per kind and when it ran (admin)", _json("counts and time", _OBJ)),
        "post": _op(
            "Compare the watched folders with the ledger and the CRM; with fix, repair and look again (admin)",
            _json("the report, per folder; `reconciled` is true when nothing is left", _OBJ),
            body={
                "type": "object",
                "properties": {
                    "source": {"type": "string"},
                    "folder": {"type": "string"},
                    "since": {"type": "string", "description": "ISO 8601 date or time"},
                    "fix": {"type": "boolean"},
                },
            },
        ),
    },
    "/api/v1/freebusy": {
        "get": _op(
            "The attendees' free/busy from their calendars (Exchange, Microsoft 365) and their common free time "
            "(any signed-in person); an address that could not be answered carries its `error`, `complete` is then false",
            _json("busy blocks per address, the merged view, the common free time", {"$ref": "#/components/schemas/FreeBusy"}),
            params=[
                {
                    "name": "address",
                    "in": "query",
                    "required": True,
                    "description": "an attendee's mail address; repeat for each (at most 100)",
                    "schema": {"type": "array", "items": {"type": "string"}},
                    "style": "form",
                    "explode": True,
                },
                _q("from", "start, ISO 8601 date or time (UTC unless an offset is given); answers use its offset", required=True),
                _q("to", "end, ISO 8601 (at most 42 days after from)", required=True),
                _q("interval", "minutes per digit of `view`, 5 to 1440 (default 30)", "integer"),
            ],
        )
    },
    "/api/v1/pimsync/conflicts": {
        "get": _op(
            "Contact sync conflicts (a field changed on both sides), oldest first, with both values; "
            "a user sees their own address books' only",
            _json("a page of conflicts", {"$ref": "#/components/schemas/SyncConflictPage"}),
            params=[
                *_PAGE,
                _q("state", "`open` (default: not settled by a person yet) or `all`"),
                _q("book", "one address book's (its name in pimsync.addressbooks)"),
            ],
        )
    },
    "/api/v1/pimsync/conflicts/{id}/resolve": {
        "post": _op(
            "Keep the CRM's or the mailbox's value: the winner kept is marked seen; the other is applied "
            "on both sides at the book's next round (within `pimsync.poll` seconds in a running gateway)",
            _json("the conflict as it is now", {"$ref": "#/components/schemas/SyncConflict"}),
            params=[{**_ID, "description": "the conflict's id"}],
            body={
                "type": "object",
                "required": ["keep"],
                "properties": {"keep": {"type": "string", "enum": ["crm", "mailbox"]}},
            },
        )
    },
    "/api/v1/openapi.json": {"get": _op("This document", _json("OpenAPI 3", _OBJ))},
}

_SPAN = {"type": "object", "properties": {"start": {"type": "string"}, "end": {"type": "string"}}}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "crm-gateway API",
        "version": VERSION,
        "description": "Sign in (POST /signin, then the session cookie and X-CSRF-Token on writes) "
        'or send `Authorization: Bearer <token>` (crm-gateway token add). Errors: {"error": "..."}.',
    },
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "crm_gateway_session"},
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "MessageItem": {
                "type": "object",
                "properties": {
                    k: {"type": t}
                    for k, t in (
                        ("id", "integer"),
                        ("message_id", "string"),
                        ("subject", "string"),
                        ("sender", "string"),
                        ("date", "string"),
                        ("state", "string"),
                        ("source", "string"),
                        ("account", "string"),
                        ("folder", "string"),
                    )
                },
            },
            "FreeBusy": {
                "type": "object",
                "properties": {
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "interval": {"type": "integer"},
                    "complete": {"type": "boolean", "description": "every address was answered"},
                    "schedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}},
                    "free": {"type": "array", "items": _SPAN, "description": "when every answered address is free"},
                },
            },
            "Schedule": {
                "type": "object",
                "properties": {
                    "address": {"type": "string"},
                    "source": {"type": "string", "nullable": True, "description": "the configured source that answered"},
                    "answered": {"type": "boolean"},
                    "error": {"type": "string", "nullable": True, "description": "why it was not answered"},
                    "busy": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "start": {"type": "string"},
                                "end": {"type": "string"},
                                "status": {
                                    "type": "string",
                                    "enum": ["tentative", "busy", "oof", "working-elsewhere", "unknown"],
                                },
                            },
                        },
                    },
                    "view": {
                        "type": "string",
                        "nullable": True,
                        "description": "one digit per interval: 0 free, 1 tentative, 2 busy, 3 out of office, "
                        "4 working elsewhere, 5 no data",
                    },
                },
            },
            "SyncConflict": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "at": {"type": "string"},
                    "book": {"type": "string"},
                    "record": {"type": "string", "description": "KIND:ID of the CRM record"},
                    "href": {"type": "string", "description": "the card's address in the book"},
                    "field": {"type": "string"},
                    "crm": {"description": "the CRM's value"},
                    "card": {"description": "the mailbox's value"},
                    "winner": {"type": "string", "enum": ["crm", "card"], "description": "the newer change, kept"},
                    "state": {"type": "string", "enum": ["open", "chosen", "applied", "seen", "superseded"]},
                    "kept": {"type": "string", "nullable": True, "enum": ["crm", "mailbox"]},
                    "resolved_by": {"type": "string", "nullable": True},
                    "resolved_at": {"type": "string", "nullable": True},
                    "outcome": {"type": "string", "description": "in words, what becomes of it"},
                },
            },
            "SyncConflictPage": {
                "type": "object",
                "properties": {
                    "conflicts": {"type": "array", "items": {"$ref": "#/components/schemas/SyncConflict"}},
                    "total": {"type": "integer"},
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                },
            },
            "MessagePage": {
                "type": "object",
                "properties": {
                    "messages": {"type": "array", "items": {"$ref": "#/components/schemas/MessageItem"}},
                    "total": {"type": "integer"},
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                },
            },
        },
    },
    "security": [{"bearer": []}, {"session": []}],
}
