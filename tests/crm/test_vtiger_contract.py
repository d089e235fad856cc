"""The connector contract against vtiger and vtenext — through a local double of their
webservice (tests/crm/doubles/vtiger_double.py), because no vtiger can run here.
The double follows vtiger's documented requests and answers; the records are read back from
its store (what vtiger's own screens would show)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import closing

import pytest

from gateway.crm import note_marker
from gateway.crm.base import PartyRef, make_connector
from gateway.crm.config_models import VtigerConfig as CrmConfig
from gateway.crm.vtiger import VtigerConnector
from gateway.errors import Permanent, Retryable
from tests.crm.contract import (
    CLIENT_TIMEOUT,
    StoredEmail,
    StoredFile,
    StoredNote,
    StoredParty,
    make_mail,
    note,
    person,
)
from tests.crm.doubles.vtiger_double import EMAIL_CF, VtigerDouble
from tests.crm.fixtures import OnADouble

KEY = "K3yK3yK3y"


class VtigerInspector:
    def __init__(self, double: VtigerDouble) -> None:
        self.double = double

    def emails(self, message_id: str) -> list[StoredEmail]:
        out = []
        for rid, rec in sorted(self.double.state.records.items(), key=lambda kv: int(kv[0].split("x")[1])):
            if not rid.startswith("8x") or rec.get(EMAIL_CF["Message-ID"]) != message_id:
                continue
            links = frozenset(
                (kind, pid)
                for kind, module in (("lead", "Leads"), ("contact", "Contacts"), ("account", "Accounts"))
                for pid in self.double.related(rid, module)
            )
            files = tuple(
                StoredFile(d["filename"], d["filetype"], len(data), hashlib.sha256(data).hexdigest())
                for d in (self.double.state.records[i] for i in self.double.related(rid, "Documents"))
                if "raw message" not in d["notecontent"]
                for data in [self.double.state.files[d["id"]]]
            )
            out.append(StoredEmail(rid, message_id, rec["subject"], rec["from_email"], links, files))
        return out

    def party(self, ref: PartyRef) -> StoredParty | None:
        rec = self.double.state.records.get(ref.id)
        if rec is None:
            return None
        fields = ("email1", "email2") if ref.kind == "account" else ("email", "secondaryemail")
        emails = frozenset(str(rec[f]) for f in fields if rec.get(f))
        return StoredParty(ref.kind, ref.id, self.double.user_email(rec.get("assigned_user_id", "")), emails)

    def notes(self, ref: PartyRef) -> list[StoredNote]:
        """The comments on the record that carry the gateway's marker (what its Comments widget
        shows), kept or not: a deleted record's comments stay in vtiger unless deleted too."""
        out = []
        for c in self.double.comments(ref.id):
            parsed = note_marker.parse(c["commentcontent"])
            if parsed is not None:
                out.append(StoredNote(c["id"], parsed.title, parsed.text))
        return out


@pytest.fixture(params=["vtiger", "vtenext"])
def double(request: pytest.FixtureRequest) -> Iterator[VtigerDouble]:
    with VtigerDouble(dialect=request.param, access_key=KEY) as d:
        yield d


class TestVtigerContract(OnADouble):
    Inspector = VtigerInspector

    @pytest.fixture
    def connector(self, double: VtigerDouble, timeout: float) -> Iterator[VtigerConnector]:
        with closing(VtigerConnector(double.url, "admin", KEY, dialect=double.dialect, timeout=timeout)) as c:
            yield c


# -- vtiger specifics -----------------------------------------------------------------------


def test_expired_session_logs_in_again(double: VtigerDouble) -> None:
    c = VtigerConnector(double.url, "admin", KEY, dialect=double.dialect, timeout=CLIENT_TIMEOUT)
    ann = c.create("contact", person("contact", "ann@acme.example"))
    double.expire_sessions()
    assert [r.id for r in c.find("ann@acme.example", ["contact"])] == [ann.id]
    assert double.logins == 2


def test_wrong_access_key_is_a_clear_error_at_check(double: VtigerDouble) -> None:
    c = VtigerConnector(double.url, "admin", "wrong", dialect=double.dialect, timeout=CLIENT_TIMEOUT)
    with pytest.raises(Permanent, match="INVALID_USER_CREDENTIALS.*access_key"):
        c.check_online()
    VtigerConnector(double.url, "admin", KEY, dialect=double.dialect, timeout=CLIENT_TIMEOUT).check_online()


def test_unreachable_is_a_clear_error_at_check() -> None:
    with VtigerDouble() as d:
        url = d.url
    with pytest.raises(Retryable, match="cannot reach"):
        VtigerConnector(url, "admin", KEY, timeout=CLIENT_TIMEOUT).check_online()


def test_queries_never_carry_a_backslash_or_an_unescaped_quote(double: VtigerDouble) -> None:
    c = VtigerConnector(double.url, "admin", KEY, dialect=double.dialect, timeout=CLIENT_TIMEOUT)
    c.create("contact", person("contact", "x@example.org"))
    assert c.find("x' or email like '%", ["contact"]) == []
    assert c.find("back\\' or '1'='1@example.org", ["contact"]) == []
    queries = [r.query for r in double.log if "operation=query" in r.query]
    assert queries and not any("%5C" in q for q in queries)
    with pytest.raises(Permanent, match="control characters"):
        c.find("evil\n@example.org", ["contact"])


def test_same_mail_attached_twice_is_one_email_with_its_documents(double: VtigerDouble) -> None:
    c = VtigerConnector(double.url, "admin", KEY, dialect=double.dialect, timeout=CLIENT_TIMEOUT)
    ann = c.create("contact", person("contact", "ann@acme.example"))
    mail = make_mail()
    assert c.attach([ann], mail).id == c.attach([ann], mail).id
    emails = [r for r in double.state.records if r.startswith("8x")]
    docs = [r for r in double.state.records if r.startswith("15x")]
    assert len(emails) == 1 and len(docs) == 1  # the raw .eml, stored once


def test_backend_from_config(double: VtigerDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = CrmConfig(backend="vtiger", url=double.url, username="admin", access_key=KEY, dialect=double.dialect)
    c = make_connector(cfg)
    assert isinstance(c, VtigerConnector) and c.dialect == double.dialect
    c.check_online()


def test_a_note_is_a_comment_assigned_to_its_owner(double: VtigerDouble) -> None:
    c = VtigerConnector(double.url, "admin", KEY, dialect=double.dialect, timeout=CLIENT_TIMEOUT)
    ann = c.create("contact", person("contact", "ann@acme.example"))
    ref = c.add_note([ann], note())
    [comment] = double.comments(ann.id)
    assert comment["id"] == ref.ids[0] and double.user_email(comment["assigned_user_id"]) == "me@example.com"
    assert comment["commentcontent"].startswith("Quote\n\nCall back about the quote.\n\n[crm-gateway note ")
