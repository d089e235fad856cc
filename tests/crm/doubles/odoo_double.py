"""A local stand-in for Odoo's external API, both flavours, over real HTTP.

No Odoo can run here, so the Odoo connector is tested against this double. It follows Odoo's
documentation, not the connector:

- "External JSON-2 API" (Odoo 19, odoo/documentation `content/developer/reference/external_api.rst`):
  `POST /json/2/<model>/<method>`, `Authorization: bearer <API key>`, optional
  `X-Odoo-Database`; body = `ids`, `context` and the method's parameters by name; success is
  200 with the JSON return value; errors are 4xx/5xx with `{name, message, arguments, context,
  debug}` (401 `werkzeug.exceptions.Unauthorized` "Invalid apikey"; validation errors 422).
- "External RPC API" (JSON-RPC 2.0 at `/jsonrpc`): `{"jsonrpc": "2.0", "method": "call",
  "params": {"service": "common"|"object", "method": …, "args": […]}}`; `common.authenticate(db,
  login, password, {})` → uid or false; `object.execute_kw(db, uid, password, model, method,
  args, kwargs)`; errors are HTTP 200 with `error: {code: 200, message: "Odoo Server Error",
  data: {name, message, arguments, debug}}`.
- ORM semantics the connector relies on: domains in prefix notation (`|`, `&`, `!`) with `=`,
  `in`, `ilike`, `=ilike` (PostgreSQL ILIKE: `%`/`_` wildcards, `\\` escapes, case-insensitive
  but accent-sensitive); `create(vals_list)` returns ids; `write` with `(4, id)` commands;
  `read`/`search_read` give a many2one field as `[id, display name]` (false when empty);
  `res.partner.website` is stored with `http://` prepended when it has no scheme;
  `mail.thread.message_post(**kwargs)` on a record returns the new `mail.message` id; unlinking a
  record removes its messages.
- Archived records (ORM "active" field, Odoo's `_active_name`): a search leaves out the records
  whose `active` is false unless its domain names `active` itself (`["active", "in", [True,
  False]]` finds both); `read` of an id still gives the record.
- `create_date` / `write_date` (`models.MAGIC_COLUMNS`): set by the ORM on create, `write_date`
  on every write, in UTC; on the wire "YYYY-MM-DD HH:MM:SS" (second precision), compared as
  such in a domain (`>=`, `>`, `<=`, `<`).
- `message_post`'s keyword parameters (odoo/addons/mail/models/mail_thread.py, Odoo 17+):
  `body`, `subject`, `message_type` ("comment" for a note), `subtype_xmlid` resolved to the
  message's `subtype_id` ("mail.mt_note" is an internal note, "mail.mt_comment" a discussion
  message; an unknown xmlid is a ValueError), `body_is_html`, `attachment_ids`, and any other
  keyword naming a `mail.message` field (such as `message_id`) stored as that field.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import re
from datetime import UTC, datetime
from typing import Any

from tests.crm.doubles.base import HttpDouble, Reply, Request

FIELDS = {
    "res.partner": {
        "name": "",
        "email": False,
        "is_company": False,
        "parent_id": False,
        "user_id": False,
        "website": False,
        "comment": False,
        "type": "contact",
        "active": True,
        "ref": False,
        "function": False,
        "phone": False,
        "mobile": False,
        "street": False,
        "city": False,
        "zip": False,
        "create_date": False,
        "write_date": False,
    },
    "crm.lead": {
        "name": "",
        "contact_name": False,
        "partner_name": False,
        "email_from": False,
        "user_id": False,
        "type": "lead",
        "description": False,
        "active": True,
    },
    "res.users": {"login": "", "name": ""},
    "mail.message": {
        "model": False,
        "res_id": 0,
        "message_id": False,
        "subject": False,
        "body": "",
        "email_from": False,
        "message_type": "notification",
        "attachment_ids": [],
        "subtype_id": False,
    },
    "ir.attachment": {
        "name": "",
        "datas": False,
        "mimetype": False,
        "res_model": False,
        "res_id": 0,
        "description": False,
        "file_size": 0,
    },
}
# many2one fields: `read` and `search_read` give them as `[id, display name]`, or false when empty
MANY2ONE = {"res.partner": {"parent_id": "res.partner", "user_id": "res.users"}, "crm.lead": {"user_id": "res.users"}}
SUBTYPES = {"mail.mt_comment": 1, "mail.mt_note": 2}  # ir.model.data of the mail module
REQUIRED = {"res.partner": ("name",), "crm.lead": ("name",), "ir.attachment": ("name",)}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


class OdooError(Exception):
    def __init__(self, name: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.name, self.message, self.status = name, message, status


def _ilike(pattern: str, value: str) -> bool:
    rx, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            rx.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        rx.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.fullmatch("".join(rx), value, re.S | re.I) is not None


class OdooDouble(HttpDouble):
    def __init__(self, *, database: str = "prod", login: str = "bot@example.com", secret: str = "s3cret-api-key") -> None:
        super().__init__()
        self.database, self.login, self.secret = database, login, secret
        self.tables: dict[str, dict[int, dict[str, Any]]] = {m: {} for m in FIELDS}
        self._ids = itertools.count(7)
        for login_ in ("bot@example.com", "me@example.com", "sales@example.com"):
            self._create("res.users", [{"login": login_, "name": login_.split("@")[0]}])
        self.bot_uid = 7

    # -- what a test reads -----------------------------------------------------------------

    def user_login(self, uid: Any) -> str:
        return self.tables["res.users"].get(uid or 0, {}).get("login", "")

    # -- the wire --------------------------------------------------------------------------

    def is_write(self, req: Request) -> bool:
        if req.path.startswith("/json/2/"):
            return req.path.endswith(("/create", "/message_post"))
        try:
            args = json.loads(req.body)["params"]["args"]
            return args[4] in ("create", "message_post")
        except (ValueError, KeyError, IndexError, TypeError):
            return False

    def rejection(self, req: Request, message: str) -> Reply:
        return self._error_reply(req, OdooError("odoo.exceptions.ValidationError", message))

    def _error_reply(self, req: Request, e: OdooError) -> Reply:
        err = {
            "name": e.name,
            "message": e.message,
            "arguments": [e.message],
            "context": {},
            "debug": f"Traceback (most recent call last):\n{e.name}: {e.message}\n",
        }
        if req.path.startswith("/json/2/"):
            return Reply(e.status, json.dumps(err).encode())
        rid = None
        with contextlib.suppress(ValueError):
            rid = json.loads(req.body).get("id")
        body = {"jsonrpc": "2.0", "id": rid, "error": {"code": 200, "message": "Odoo Server Error", "data": err}}
        return Reply(200, json.dumps(body).encode())

    def handle(self, req: Request) -> Reply:
        try:
            if req.method == "POST" and req.path.startswith("/json/2/"):
                return self._json2(req)
            if req.method == "POST" and req.path == "/jsonrpc":
                return self._jsonrpc(req)
        except OdooError as e:
            return self._error_reply(req, e)
        return Reply(404, b"<h1>Not Found</h1>", {"Content-Type": "text/html"})

    def _json2(self, req: Request) -> Reply:
        auth = req.headers.get("authorization", "")
        if auth.split(" ", 1)[0].lower() != "bearer" or auth.split(" ", 1)[-1] != self.secret:
            raise OdooError("werkzeug.exceptions.Unauthorized", "Invalid apikey", 401)
        if req.headers.get("x-odoo-database", self.database) != self.database:
            raise OdooError("werkzeug.exceptions.NotFound", "database not found", 404)
        _, _, _, model, method = req.path.split("/", 4)
        params = json.loads(req.body or b"{}")
        ids = params.pop("ids", None)
        params.pop("context", None)
        return Reply(200, json.dumps(self.execute(model, method, ids, params)).encode())

    def _jsonrpc(self, req: Request) -> Reply:
        call = json.loads(req.body)
        p = call.get("params", {})
        service, method, args = p.get("service"), p.get("method"), p.get("args", [])
        if service == "common" and method in ("authenticate", "login"):
            ok = args[:3] == [self.database, self.login, self.secret]
            result: Any = self.bot_uid if ok else False
        elif service == "common" and method == "version":
            result = {"server_version": "18.0", "server_version_info": [18, 0, 0, "final", 0, ""], "protocol_version": 1}
        elif service == "object" and method == "execute_kw":
            db, uid, password, model, meth, margs = args[:6]
            kwargs = args[6] if len(args) > 6 else {}
            if db != self.database or uid != self.bot_uid or password != self.secret:
                raise OdooError("odoo.exceptions.AccessDenied", "Access Denied")
            ids = margs[0] if margs and meth in ("read", "write", "unlink", "message_post") else None
            if meth == "create" and margs:
                kwargs = {"vals_list": margs[0], **kwargs}
            elif meth == "search_read" and margs:
                kwargs = {"domain": margs[0], **kwargs}
            result = self.execute(model, meth, ids, kwargs)
        else:
            raise OdooError("KeyError", f"no method {service}.{method}")
        return Reply(200, json.dumps({"jsonrpc": "2.0", "id": call.get("id"), "result": result}).encode())

    # -- the ORM ---------------------------------------------------------------------------

    def execute(self, model: str, method: str, ids: list[int] | None, params: dict[str, Any]) -> Any:
        if model not in FIELDS:
            raise OdooError("KeyError", f"'{model}'", 404)
        table = self.tables[model]
        if method == "search_read":
            domain = list(params.get("domain") or [])
            if "active" in FIELDS[model] and not any(isinstance(t, list) and t and t[0] == "active" for t in domain):
                domain = [*domain, ["active", "=", True]]  # active_test: archived records stay out
            rows = [r for r in sorted(table.values(), key=lambda r: r["id"]) if self._match(r, domain)]
            if params.get("limit"):
                rows = rows[: params["limit"]]
            return [self._read(model, r, params.get("fields")) for r in rows]
        if method == "read":
            return [self._read(model, table[i], params.get("fields")) for i in ids or [] if i in table]
        if method == "create":
            vals = params.get("vals_list")
            return self._create(model, vals if isinstance(vals, list) else [vals])
        if method == "write":
            for i in ids or []:
                if i not in table:
                    raise OdooError("odoo.exceptions.MissingError", "Record does not exist or has been deleted.", 404)
                self._write(table[i], params.get("vals") or {})
                if "write_date" in table[i]:
                    table[i]["write_date"] = _now()
            return True
        if method == "unlink":
            for i in ids or []:
                table.pop(i, None)
                if model in ("res.partner", "crm.lead"):
                    msgs = self.tables["mail.message"]
                    for mid in [m for m, r in msgs.items() if r["model"] == model and r["res_id"] == i]:
                        del msgs[mid]
            return True
        if method == "message_post" and model in ("res.partner", "crm.lead"):
            [res_id] = ids or [0]
            if res_id not in table:
                raise OdooError("odoo.exceptions.MissingError", "Record does not exist or has been deleted.", 404)
            vals = {k: params[k] for k in ("subject", "body", "email_from", "message_type", "message_id") if k in params}
            if params.get("subtype_xmlid"):
                if params["subtype_xmlid"] not in SUBTYPES:
                    raise OdooError("ValueError", f"External ID not found in the system: {params['subtype_xmlid']}")
                vals["subtype_id"] = SUBTYPES[params["subtype_xmlid"]]
            vals.update(model=model, res_id=res_id, attachment_ids=list(params.get("attachment_ids") or []))
            return self._create("mail.message", [vals])[0]
        if method == "context_get" and model == "res.users":
            return {"lang": "en_US", "tz": "UTC", "uid": self.bot_uid}
        raise OdooError("AttributeError", f"The method '{method}' does not exist on the model '{model}'", 404)

    def _create(self, model: str, vals_list: list[dict[str, Any]]) -> list[int]:
        new = []
        for vals in vals_list:
            unknown = set(vals) - set(FIELDS[model])
            if unknown:
                raise OdooError("ValueError", f"Invalid field {sorted(unknown)[0]!r} on model {model!r}")
            for f in REQUIRED.get(model, ()):
                if not vals.get(f):
                    raise OdooError(
                        "odoo.exceptions.ValidationError", f"Missing required value for the field '{f}' on model '{model}'"
                    )
            rec: dict[str, Any] = {"id": next(self._ids), **json.loads(json.dumps(FIELDS[model]))}
            self._write(rec, vals)
            if "write_date" in rec:
                rec["create_date"] = rec["write_date"] = _now()
            if model == "ir.attachment" and rec["datas"]:
                rec["file_size"] = len(base64.b64decode(rec["datas"]))
            self.tables[model][rec["id"]] = rec
            new.append(rec["id"])
        return new

    def _write(self, rec: dict[str, Any], vals: dict[str, Any]) -> None:
        for k, v in vals.items():
            if k == "attachment_ids" and isinstance(v, list):
                ids = list(rec.get(k) or [])
                for item in v:
                    if isinstance(item, list) and item and item[0] == 4:
                        ids += [item[1]] if item[1] not in ids else []
                    elif isinstance(item, int) and item not in ids:
                        ids.append(item)
                v = ids
            if k == "website" and v and "://" not in v:
                v = "http://" + v
            rec[k] = v

    def _read(self, model: str, rec: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        out = {k: v for k, v in rec.items() if not fields or k in fields or k == "id"}
        for f, target in MANY2ONE.get(model, {}).items():
            if out.get(f):
                other = self.tables[target].get(out[f], {})
                out[f] = [out[f], other.get("name") or other.get("login") or ""]
        return out

    def _match(self, rec: dict[str, Any], domain: list[Any]) -> bool:
        def term(t: list[Any]) -> bool:
            f, op, v = t
            have = rec.get(f)
            if op == "=":
                return have == v
            if op == "!=":
                return have != v
            if op == "in":
                return have in v
            if op in (">=", ">", "<=", "<"):
                if not have:
                    return False  # a comparison with an empty value is false in SQL
                return {">=": have >= v, ">": have > v, "<=": have <= v, "<": have < v}[op]
            if op in ("ilike", "=ilike"):
                pattern = f"%{v}%" if op == "ilike" else v
                return isinstance(have, str) and _ilike(pattern, have)
            raise OdooError("ValueError", f"Invalid domain operator {op!r}")

        def parse(i: int) -> tuple[bool, int]:
            tok = domain[i]
            if tok == "!":
                val, j = parse(i + 1)
                return not val, j
            if tok in ("|", "&"):
                a, j = parse(i + 1)
                b, k = parse(j)
                return (a or b) if tok == "|" else (a and b), k
            return term(tok), i + 1

        result, i = True, 0
        while i < len(domain):
            val, i = parse(i)
            result = result and val
        return result
