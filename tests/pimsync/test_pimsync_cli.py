"""`crm-gateway pimsync` as a user meets it: config mistakes, a server that refuses or is
away, vCard 4.0 books."""

from __future__ import annotations

from pathlib import Path

import yaml

from gateway.crm.sync import ContactFields
from tests.fixtures import Home
from tests.pimsync.radicale_server import PASSWORD, Radicale, free_port
from tests.pimsync.world import World


def book(name: str, url: str, user: str = "u0", password: str = PASSWORD, **more: object) -> dict[str, object]:
    return {"name": name, "url": url, "username": user, "password": password, "crm_user": f"{user}@example.com", **more}


def test_a_mistake_in_the_pimsync_section_is_a_user_error_with_its_place(tmp_path: Path) -> None:
    home = Home(tmp_path, {"pimsync": {"on_card_deleted": "erase", "addressbooks": [book("a b", "ftp://x/")]}})
    proc = home.cli("check")
    assert proc.returncode == 1
    assert "pimsync.on_card_deleted" in proc.stderr and "pimsync.addressbooks.0.url" in proc.stderr
    assert "config.yaml:" in proc.stderr

    home = Home(tmp_path / "two", {})
    proc = home.cli("pimsync")
    assert proc.returncode == 1 and "no address books configured" in proc.stderr


def test_refused_credentials_are_a_user_error_and_a_server_away_a_runtime_failure(
    tmp_path: Path, radicale: Radicale, users: tuple[str, str]
) -> None:
    alice, _ = users
    url = radicale.make_addressbook(alice)
    home = Home(tmp_path, {"pimsync": {"addressbooks": [book("refused", url, alice, password="wrong")]}})
    proc = home.cli("pimsync")
    assert proc.returncode == 1, proc.stderr
    assert "error: refused:" in proc.stderr and "401" in proc.stderr

    away = f"http://127.0.0.1:{free_port()}/{alice}/contacts/"
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["pimsync"]["addressbooks"] = [book("away", away, alice), book("fine", url, alice)]
    home.config_path.write_text(yaml.safe_dump(cfg))
    proc = home.cli("pimsync")
    assert proc.returncode == 2, proc.stderr
    assert "error: away:" in proc.stderr
    assert "fine: cards 0 created" in proc.stdout  # one book away does not stop the others


def test_a_vcard_4_book_gets_vcard_4_cards(tmp_path: Path, radicale: Radicale, users: tuple[str, str]) -> None:
    w = World(tmp_path, radicale, *users)
    try:
        cfg = yaml.safe_load(w.home.config_path.read_text())
        for b in cfg["pimsync"]["addressbooks"]:
            b["vcard_version"] = "4.0"
        w.home.config_path.write_text(yaml.safe_dump(cfg))
        w.contacts.create_contact(
            ContactFields(first_name="Vee", last_name="Four", emails=("v4@x.example",)), w.owner(w.alice), "v4"
        )
        assert w.home.cli("pimsync").returncode == 0
        (href,) = w.cards(w.alice)
        _, text = w.card_text(w.alice, href)
        assert "VERSION:4.0" in text and "EMAIL:v4@x.example" in text
    finally:
        w.close()


def test_a_book_may_name_a_source_whose_crm_user_and_login_it_takes(tmp_path: Path) -> None:
    imap = {
        "name": "groupware",
        "type": "imap",
        "host": "mail.example.com",
        "username": "carol",
        "password": "imap-secret",
        "crm_user": "carol@example.com",
    }
    books = [
        {"name": "carol", "url": "https://dav.example.com/carol/contacts", "source": "groupware"},
        {"name": "me", "url": "https://dav.example.com/me/contacts/", "source": "local", "username": "me", "password": "x"},
    ]
    home = Home(tmp_path, {"pimsync": {"addressbooks": books}})
    cfg = yaml.safe_load(home.config_path.read_text())
    cfg["sources"].append(imap)
    home.config_path.write_text(yaml.safe_dump(cfg))
    carol, me = home.config().addressbooks()
    assert (carol.crm_user, carol.username, carol.password, carol.url) == (
        "carol@example.com",
        "carol",
        "imap-secret",
        "https://dav.example.com/carol/contacts/",
    )
    assert (me.crm_user, me.username, me.password) == ("me@example.com", "me", "x")

    cfg["pimsync"]["addressbooks"] = [{"name": "x", "url": "https://dav.example.com/x/", "source": "nowhere"}]
    home.config_path.write_text(yaml.safe_dump(cfg))
    proc = home.cli("check")
    assert proc.returncode == 1 and "'nowhere' is no configured source" in proc.stderr

    cfg["pimsync"]["addressbooks"] = [{"name": "x", "url": "https://dav.example.com/x/"}]
    home.config_path.write_text(yaml.safe_dump(cfg))
    proc = home.cli("check")
    assert proc.returncode == 1 and "give crm_user" in proc.stderr


def test_a_password_in_the_book_url_is_refused_and_never_printed(tmp_path: Path) -> None:
    home = Home(tmp_path, {"pimsync": {"addressbooks": [book("inline", "https://alice:s3cret@dav.example/alice/contacts/")]}})
    proc = home.cli("check")
    assert proc.returncode == 1
    assert "pimsync.addressbooks.0.url" in proc.stderr and "username and password" in proc.stderr
    assert "s3cret" not in proc.stderr + proc.stdout
