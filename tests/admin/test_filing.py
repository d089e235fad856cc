"""Which mailboxes a look-up for a mail the gateway never handled searches (gateway/admin/
filing.py `find`), with sources that answer from a dict: the asker's scope, the mailbox the
add-in names first, the cap of SEARCH_MAX a request and its words, and a mailbox that cannot
be reached. The real searches are tested against Dovecot, Maildir and the Exchange doubles."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from gateway.admin.filing import SEARCH_MAX, find
from gateway.admin.scope import Visibility
from gateway.errors import NotFound, Retryable
from gateway.ledger.refs import SourceRef
from gateway.mailboxes.base import Found, MessageFinder


@dataclass
class Boxes:
    """A source of many mailboxes whose mail is a dict: account → Message-IDs held."""

    name: str
    held: dict[str, set[str]]
    down: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    def reachable(self) -> list[str]:
        return list(self.held)

    def find_message(self, account: str, message_id: str) -> Found | None:
        self.asked.append(account)
        if account in self.down:
            raise Retryable(f"{account} cannot be reached")
        if message_id in self.held[account]:
            return Found(SourceRef(self.name, account, "INBOX", "1", 7), b"Message-ID: " + message_id.encode() + b"\r\n\r\n")
        return None


@dataclass
class Gw:
    sources: list[Boxes]


def test_a_source_that_answers_is_a_message_finder():
    assert isinstance(Boxes("s", {}), MessageFinder)


def test_only_the_askers_mailboxes_are_searched_and_the_named_one_first():
    src = Boxes("fleet", {"a@x": {"<m@x>"}, "b@x": {"<m@x>"}, "c@x": set()})
    mine = Visibility(frozenset(), frozenset({"b@x", "c@x"}))
    assert find(Gw([src]), "<m@x>", mine, mailbox="C@X").ref.account == "b@x"
    assert src.asked == ["c@x", "b@x"]  # c named first; a is not the asker's
    with pytest.raises(NotFound, match=r"^no message with Message-ID <n@x> in the mailboxes you own, handled or not$"):
        find(Gw([src]), "<n@x>", mine)


def test_at_most_search_max_mailboxes_a_request_and_the_404_says_how_many_were_left():
    many = {f"u{i:03d}@x": set() for i in range(SEARCH_MAX + 5)}
    many["u029@x"] = {"<late@x>"}
    src = Boxes("fleet", many)
    with pytest.raises(NotFound, match=f"searched {SEARCH_MAX} mailboxes and left 5: name the one with `mailbox`"):
        find(Gw([src]), "<late@x>", None)
    assert len(src.asked) == SEARCH_MAX
    assert find(Gw([src]), "<late@x>", None, mailbox="u029@x").ref.account == "u029@x"


def test_an_unreachable_mailbox_is_passed_over_and_is_the_answer_only_when_no_other_has_the_mail():
    src = Boxes("fleet", {"a@x": set(), "b@x": {"<m@x>"}}, down={"a@x"})
    assert find(Gw([src]), "<m@x>", None).ref.account == "b@x"
    with pytest.raises(Retryable, match="a@x cannot be reached"):
        find(Gw([src]), "<gone@x>", None)


def test_a_look_up_naming_a_mailbox_searches_that_one_only():
    """The pane looks up every mail a person opens, naming their Outlook mailbox: one search,
    not one per mailbox the person may see (an admin: all of them)."""
    from gateway.admin.filing import unfiled_doc

    src = Boxes("fleet", {f"u{i}@x": set() for i in range(10)} | {"me@x": {"<m@x>"}})
    assert unfiled_doc(Gw([src]), "<m@x>", None, mailbox="me@x")["mailbox"] == "fleet:me@x/INBOX"
    assert src.asked == ["me@x"]
    src.asked.clear()
    with pytest.raises(NotFound):
        unfiled_doc(Gw([src]), "<elsewhere@x>", None, mailbox="me@x")
    assert src.asked == ["me@x"]
