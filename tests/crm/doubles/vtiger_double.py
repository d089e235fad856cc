"""A local stand-in for vtiger CRM's webservice (`webservice.php`), and vtenext's dialect of it.

No vtiger can run here, so the vtiger connector is tested against this double. It follows
what vtiger documents and what its webservice code does, not the connector:

- vtiger CRM source, `webservice.php`: every answer is HTTP 200 with
  `{"success": true, "result": …}` or `{"success": false, "error": {"code", "message"}}`;
  error codes from `include/Webservices/WebServiceErrorCode.php` (`INVALID_SESSIONID`,
  `INVALID_USER_CREDENTIALS`, `INVALID_AUTH_TOKEN`, `MANDATORY_FIELDS_MISSING`, …).
- The vtiger/coreBOS webservice tutorial ("Login to Web Service"): `getchallenge` (GET,
  `username`) returns `token`/`serverTime`/`expireTime`; `login` (POST, `username`,
  `accessKey` = md5(token + the user's access key)) returns `sessionName` and `userId`;
  `query` (GET, VTQL ending in `;`, at most 100 rows), `create` (POST, `elementType`, JSON
  `element`; Documents with the file as the multipart part `filename`), `retrieve`,
  `describe`, `delete`.
- vtiger's `add_related` operation (params `sourceRecordId`, `relatedRecordId`,
  `relationIdLabel`, registered in vtiger's migration scripts) and `retrieve_related`
  (`id`, `relatedType`, `relatedLabel`); vtenext's `relate` (`id`, JSON `relatelist`,
  `relationid`; vtenext `include/Webservices/Relate.php`) — with `dialect="vtenext"` the
  double knows `relate` and not `add_related`.
- The `ModComments` module (vtiger's "Comments" widget on a record): `commentcontent`
  and `related_to` (both mandatory; the record, a reference checked like any other) and
  `assigned_user_id`, made with `create` and read with `query` like any module (vtiger's
  `modules/ModComments` and its webservice entity). Deleting a record leaves its comments in
  place: vtiger marks the record deleted and nothing more.
- Webservice ids are `<module prefix>x<crmid>` ("12x34").
- VTQL string literals are pasted into MySQL: a quote is doubled, a backslash escapes the next
  character (MySQL's default), and `=`/`like` compare with MySQL's `utf8_general_ci` collation:
  case- and accent-insensitive (so `zoe` = `zoë`: exact matching is the client's job).

Sessions expire when the test says so (`expire_sessions()`), answered with `INVALID_SESSIONID`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import unicodedata
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from tests.crm.doubles.base import HttpDouble, Reply, Request

PREFIX = {"Leads": "10", "Accounts": "11", "Contacts": "12", "Emails": "8", "Documents": "15", "Users": "19", "ModComments": "31"}
MANDATORY = {
    "Leads": ("lastname",),
    "Contacts": ("lastname",),
    "Accounts": ("accountname",),
    "Documents": ("notes_title",),
    "Emails": ("subject",),
    "ModComments": ("commentcontent", "related_to"),
}
EMAIL_CF = {"Message-ID": "cf_801", "Content hash": "cf_802"}


def _fold(s: str) -> str:
    """MySQL utf8_general_ci, roughly: no case, no accents."""
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).casefold()


def _like(pattern: str, value: str) -> bool:
    rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in _fold(pattern))
    return re.fullmatch(rx, _fold(value), re.S) is not None


_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^'\\]|''|\\.)*')|(?P<op>=|\(|\)|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*|\d+))", re.S)


def _unquote(lit: str) -> str:
    out, i, body = [], 0, lit[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append({"n": "\n", "t": "\t", "0": "\0"}.get(body[i + 1], body[i + 1]))
            i += 2
        elif c == "'" and body[i + 1 : i + 2] == "'":
            out.append("'")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class VtqlError(Exception):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise VtqlError(f"Syntax Error on line 1: token '{text[pos : pos + 10]}'")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _where(tokens: list[tuple[str, str]]):  # -> predicate over a record
    """`a = 'x' and b like 'y' or c in ('p','q')`: OR of ANDs, as VTQL allows."""
    ors: list[list] = [[]]
    i = 0
    while i < len(tokens):
        kind, val = tokens[i]
        if kind == "word" and val.lower() in ("and", "or"):
            if val.lower() == "or":
                ors.append([])
            i += 1
            continue
        fieldname = val
        op = tokens[i + 1][1].lower()
        if op == "in":
            vals, i = [], i + 3
            while tokens[i][1] != ")":
                if tokens[i][0] == "str":
                    vals.append(_unquote(tokens[i][1]))
                i += 1
            ors[-1].append((fieldname, "in", vals))
            i += 1
        elif op in ("=", "like") and tokens[i + 2][0] == "str":
            ors[-1].append((fieldname, op, _unquote(tokens[i + 2][1])))
            i += 3
        else:
            raise VtqlError(f"Syntax Error on line 1: near {fieldname}")

    def test(rec: dict) -> bool:
        def one(f: str, op: str, v) -> bool:
            have = str(rec.get(f) or "")
            if op == "=":
                return _fold(have) == _fold(v)
            if op == "like":
                return _like(v, have)
            return any(_fold(have) == _fold(x) for x in v)

        return any(all(one(*c) for c in conj) for conj in ors)

    return test


_SELECT = re.compile(
    r"^\s*select\s+(.+?)\s+from\s+(\w+)(?:\s+where\s+(.+?))?(?:\s+limit\s+(\d+)(?:\s*,\s*(\d+))?)?\s*;\s*$", re.S | re.I
)


@dataclass
class VtigerState:
    records: dict[str, dict] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # document id -> bytes
    relations: set[tuple[str, str]] = field(default_factory=set)  # (source id, related id)


class VtigerDouble(HttpDouble):
    def __init__(self, *, dialect: str = "vtiger", username: str = "admin", access_key: str = "K3yK3yK3y") -> None:
        super().__init__()
        self.dialect = dialect
        self.username = username
        self.access_key = access_key
        self.state = VtigerState()
        self._ids = itertools.count(100)
        self._tokens: set[str] = set()
        self.sessions: dict[str, str] = {}
        self.logins = 0
        for i, email in ((1, "admin@example.com"), (5, "me@example.com"), (6, "sales@example.com")):
            self.state.records[f"19x{i}"] = {"id": f"19x{i}", "user_name": email.split("@")[0], "email1": email}

    # -- helpers for tests ----------------------------------------------------------------

    def expire_sessions(self) -> None:
        self.sessions.clear()

    def user_email(self, ws_id: str) -> str:
        return self.state.records.get(ws_id, {}).get("email1", "")

    def related(self, ws_id: str, module: str) -> list[str]:
        ids = {b for a, b in self.state.relations if a == ws_id} | {a for a, b in self.state.relations if b == ws_id}
        return sorted((i for i in ids if i.split("x")[0] == PREFIX[module]), key=lambda i: int(i.split("x")[1]))

    def comments(self, ws_id: str) -> list[dict]:
        """The ModComments records on a record, oldest first."""
        rows = [
            r for k, r in self.state.records.items() if k.startswith(PREFIX["ModComments"] + "x") and r.get("related_to") == ws_id
        ]
        return sorted(rows, key=lambda r: int(r["id"].split("x")[1]))

    # -- the wire ---------------------------------------------------------------------------

    def is_write(self, req: Request) -> bool:
        return req.method == "POST" and self._params(req).get("operation") == "create"

    def rejection(self, req: Request, message: str) -> Reply:
        return self._err("MANDATORY_FIELDS_MISSING", message)

    @staticmethod
    def _ok(result) -> Reply:
        return Reply(200, json.dumps({"success": True, "result": result}).encode())

    @staticmethod
    def _err(code: str, message: str) -> Reply:
        return Reply(200, json.dumps({"success": False, "error": {"code": code, "message": message}}).encode())

    def _params(self, req: Request) -> dict:
        params = {k: v[0] for k, v in parse_qs(req.query, keep_blank_values=True).items()}
        ctype = req.headers.get("content-type", "")
        if req.method == "POST" and ctype.startswith("application/x-www-form-urlencoded"):
            params.update({k: v[0] for k, v in parse_qs(req.body.decode(), keep_blank_values=True).items()})
        elif req.method == "POST" and ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + req.body)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if part.get_filename() is not None:
                    params["__file__"] = (part.get_filename(), part.get_payload(decode=True) or b"")
                else:
                    params[name] = (part.get_payload(decode=True) or b"").decode()
        return params

    def handle(self, req: Request) -> Reply:
        if req.path.rstrip("/").rsplit("/", 1)[-1] != "webservice.php":
            return Reply(404, b"Not Found", {"Content-Type": "text/html"})
        p = self._params(req)
        op = (p.get("operation") or "").lower()
        if op == "getchallenge":
            if p.get("username") != self.username:
                return self._err("INVALID_USER_CREDENTIALS", "Invalid username or password")
            token = hashlib.md5(str(next(self._ids)).encode()).hexdigest()[:13]
            self._tokens.add(token)
            return self._ok({"token": token, "serverTime": 1700000000, "expireTime": 1700000300})
        if op == "login":
            if req.method != "POST":
                return self._err("AUTHENTICATION_REQUIRED", "Authencation required")
            good = [t for t in self._tokens if hashlib.md5((t + self.access_key).encode()).hexdigest() == p.get("accessKey")]
            if p.get("username") != self.username or not good:
                return self._err("INVALID_USER_CREDENTIALS", "Invalid username or password")
            self._tokens.discard(good[0])
            self.logins += 1
            session = hashlib.md5(f"s{next(self._ids)}".encode()).hexdigest()
            self.sessions[session] = "19x1"
            return self._ok({"sessionName": session, "userId": "19x1", "version": "0.22", "vtigerVersion": "7.5.0"})
        if not p.get("sessionName"):
            return self._err("AUTHENTICATION_REQUIRED", "Authencation required")
        if p["sessionName"] not in self.sessions:
            return self._err("INVALID_SESSIONID", "Session Identifier provided is Invalid")
        try:
            if op == "query" and req.method == "GET":
                return self._ok(self._query(p.get("query", "")))
            if op == "describe":
                return self._ok(self._describe(p.get("elementType", "")))
            if op == "create" and req.method == "POST":
                return self._create(p)
            if op == "retrieve":
                rec = self.state.records.get(p.get("id", ""))
                return self._ok(rec) if rec else self._err("RECORD_NOT_FOUND", "Record you are trying to access is not found")
            if op == "retrieve_related":
                return self._ok([self.state.records[i] for i in self.related(p.get("id", ""), p.get("relatedType", ""))])
            if op == "add_related" and req.method == "POST" and self.dialect == "vtiger":
                return self._relate(p.get("sourceRecordId", ""), [p.get("relatedRecordId", "")])
            if op == "relate" and req.method == "POST" and self.dialect == "vtenext":
                return self._relate(p.get("id", ""), json.loads(p.get("relatelist") or "[]"))
            if op == "delete" and req.method == "POST":
                rid = p.get("id", "")
                if rid not in self.state.records:
                    return self._err("RECORD_NOT_FOUND", "Record you are trying to access is not found")
                del self.state.records[rid]
                self.state.files.pop(rid, None)
                self.state.relations = {r for r in self.state.relations if rid not in r}
                return self._ok({"status": "successful"})
        except VtqlError as e:
            return self._err("QUERY_SYNTAX_ERROR", str(e))
        except KeyError as e:
            return self._err("INVALID_ID_ATTRIBUTE", f"Id specified is incorrect: {e}")
        return self._err("UNKNOWN_OPERATION", f"Unknown operation requested {op}")

    def _describe(self, module: str) -> dict:
        names = {
            "Emails": [
                "subject",
                "description",
                "from_email",
                "saved_toid",
                "ccmail",
                "date_start",
                "time_start",
                "parent_id",
                "assigned_user_id",
                "activitytype",
                "email_flag",
            ]
        }.get(module, [])
        fields = [{"name": n, "label": n.replace("_", " ").title()} for n in names]
        if module == "Emails":
            fields += [{"name": n, "label": label} for label, n in EMAIL_CF.items()]
        return {"label": module, "name": module, "createable": True, "fields": fields}

    def _query(self, q: str) -> list[dict]:
        m = _SELECT.match(q)
        if not m:
            raise VtqlError("Syntax Error on line 1")
        _cols, module, where, a, b = m.groups()
        if module not in PREFIX:
            raise VtqlError(f"Permission to perform the operation is denied for name {module}")
        rows = [r for k, r in self.state.records.items() if k.split("x")[0] == PREFIX[module]]
        if where:
            test = _where(_tokens(where))
            rows = [r for r in rows if test(r)]
        rows.sort(key=lambda r: int(r["id"].split("x")[1]))
        offset, count = (0, int(a)) if b is None and a else (int(a or 0), int(b or 100))
        return [dict(r) for r in rows[offset : offset + min(count, 100)]]

    def _create(self, p: dict) -> Reply:
        module = p.get("elementType", "")
        if module not in PREFIX or module == "Users":
            return self._err("ACCESS_DENIED", f"Permission to perform the operation is denied for name {module}")
        element = json.loads(p.get("element") or "{}")
        for f in MANDATORY.get(module, ()):
            if not str(element.get(f) or "").strip():
                return self._err("MANDATORY_FIELDS_MISSING", f"{f} does not have a value")
        for ref in ("assigned_user_id", "account_id", "parent_id", "related_to"):
            if element.get(ref) and element[ref] not in self.state.records:
                return self._err("REFERENCE_INVALID", f"{ref} does not refer to an existing record")
        rid = f"{PREFIX[module]}x{next(self._ids)}"
        rec = {k: ("" if v is None else v) for k, v in element.items()} | {"id": rid}
        if module == "Documents":
            if "__file__" not in p and element.get("filelocationtype") == "I":
                return self._err("MANDATORY_FIELDS_MISSING", "filename does not have a value")
            if "__file__" in p:
                name, data = p["__file__"]
                self.state.files[rid] = data
                rec.update(filename=name, filesize=str(len(data)))
        self.state.records[rid] = rec
        if module == "Emails" and element.get("parent_id"):
            self.state.relations.add((element["parent_id"], rid))
        return self._ok(dict(rec))

    def _relate(self, source: str, related: list[str]) -> Reply:
        for rid in [source, *related]:
            if rid not in self.state.records:
                return self._err("RECORD_NOT_FOUND", "Record you are trying to access is not found")
        for rid in related:
            if (rid, source) not in self.state.relations:
                self.state.relations.add((source, rid))
        return self._ok({"message": "successfull"})
