"""A Maildir source never touches a file outside its root: not through a folder name, not
through a symlink planted in the Maildir (a folder or a mail file pointing elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.errors import Permanent
from gateway.mailboxes.maildir.layout import MaildirLayout
from tests.mail import make_mail

MOVE_RULE = """\
rules:
  - name: Away
    when: {folder: VLeads}
    then:
      - tag: Seen
      - move: Done
      - stop
"""


def _outside(tmp_path: Path) -> Path:
    out = tmp_path.parent / (tmp_path.name + "-outside")
    for sub in ("new", "cur", "tmp"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    return out


def _files(folder: Path) -> list[str]:
    return sorted(p.name for sub in ("new", "cur") for p in (folder / sub).iterdir())


def test_a_move_into_a_folder_symlinked_out_of_the_maildir_is_refused(home, tmp_path):
    outside = _outside(tmp_path)
    (home.mail / "Done").symlink_to(outside, target_is_directory=True)
    (home.root / "rules" / "00-away.yaml").write_text(MOVE_RULE)
    mail = home.drop("VLeads", make_mail(sender="Bob Ray <bob@x.org>"))
    res = home.cli("run", "--once")
    assert "Traceback" not in res.stderr
    assert _files(outside) == []  # nothing left the Maildir
    assert _files(home.mail / "VLeads") == [mail.name]
    shown = json.loads(home.cli("explain", "--json", "<" + _message_id(mail) + ">", check=True).stdout)
    assert shown["state"] == "retrying"  # the CRM work is kept; the move waits for the admin to fix the link
    assert "outside the Maildir: refused" in shown["reason"]


def test_a_mail_file_symlinked_to_a_file_elsewhere_is_not_read(home, tmp_path):
    secret = _outside(tmp_path) / "cur" / "private.eml"
    secret.write_bytes(make_mail(sender="Eve <eve@x.org>", subject="not for the CRM"))
    (home.mail / "VLeads" / "new" / "1700000000.link.host").symlink_to(secret)
    assert home.run_once() == {}
    assert home.dump()["emails"] == []
    assert secret.exists()


@pytest.mark.parametrize("name", ["../escape", "/etc", "a/../../b", "a//b", "./x"])
def test_the_layout_refuses_a_name_that_is_a_path_even_unchecked(tmp_path, name):
    root = tmp_path / "mail"
    root.mkdir()
    for layout in ("fs", "maildir++", "auto"):
        with pytest.raises(Permanent):
            MaildirLayout(root, layout).ensure(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mail"]  # nothing created beside it
    assert list(root.iterdir()) == []


def test_subfolders_of_either_layout_stay_allowed(tmp_path):
    root = tmp_path / "mail"
    assert MaildirLayout(root, "fs").ensure("Sales/2026") == root / "Sales" / "2026"
    assert MaildirLayout(root, "maildir++").ensure("Sales/2026") == root / ".Sales.2026"


def _message_id(path: Path) -> str:
    from email import message_from_bytes

    return message_from_bytes(path.read_bytes())["Message-ID"].strip("<>")
