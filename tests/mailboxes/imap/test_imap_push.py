"""IMAP source against a real Dovecot: push, backfill, restart, keywords and \\Seen read back."""

from __future__ import annotations

from tests.mail import make_mail
from tests.mailboxes.imap.fixtures import message_id_of, wait_for


def test_appended_and_dragged_mail_reaches_the_crm_tagged_and_unread(imap_home, dovecot):
    home = imap_home()
    home.start()
    home.wait_idle("VLeads")
    appended = make_mail(sender="Bob Ray <bob@x.org>", subject="Quote please")
    dovecot.append("VLeads", appended)
    dragged = make_mail(sender="Cy Dee <cy@y.org>", subject="Dragged from the inbox")
    dovecot.append("INBOX", dragged)
    dovecot.move("INBOX", "VLeads", message_id_of(dragged))  # a person dragging it into the folder

    for raw in (appended, dragged):
        wait_for(lambda raw=raw: home.tagged("VLeads", message_id_of(raw), "CRM_sync", "Synced"), what="keywords on the mail")
    flags = dovecot.flags("VLeads")
    assert all("\\Seen" not in f for f in flags.values()), flags
    dump = home.dump()
    assert sorted(e["subject"] for e in dump["emails"]) == ["Dragged from the inbox", "Quote please"]
    assert sorted(e for lead in dump["leads"] for e in lead["emails"]) == ["bob@x.org", "cy@y.org"]
    st = home.source_status()
    assert st["folders"]["VLeads"]["mode"] == "idle"
    assert st["keywords"] == "keywords"


def test_mail_already_there_is_processed_and_a_restart_redoes_nothing(imap_home, dovecot):
    raws = [make_mail(sender=f"P{i} <p{i}@old{i}.org>", subject=f"Old {i}") for i in range(5)]
    dovecot.multiappend("VLeads", raws)
    home = imap_home()
    home.start()
    for raw in raws:
        wait_for(lambda raw=raw: home.tagged("VLeads", message_id_of(raw), "CRM_sync", "Synced"), what="backfill tagged")
    home.stop()
    before = (home.dump(), home.states())
    assert len(before[0]["emails"]) == 5 and before[1] == {"done": 5}

    home.start()  # restart: the cursor says everything is done
    home.wait_idle("VLeads")
    late = make_mail(sender="Late <late@new.org>", subject="After the restart")
    dovecot.append("VLeads", late)
    wait_for(lambda: home.tagged("VLeads", message_id_of(late), "CRM_sync"), what="the new mail tagged")
    home.stop()
    dump = home.dump()
    assert sorted(e["subject"] for e in dump["emails"]) == sorted([f"Old {i}" for i in range(5)] + ["After the restart"])
    assert home.states() == {"done": 6}
    st = home.status_json()["sources"][0]
    leads = {f["folder"]: f for f in st["folders"]}["VLeads"]
    assert leads["last_uid"] == 6 and leads["counts"] == {"done": 6}


def test_dovecot_restart_while_idling_loses_nothing_and_doubles_nothing(imap_home, dovecot):
    home = imap_home()
    home.start()
    home.wait_idle("VLeads")
    first = make_mail(sender="A <a@a.org>", subject="Before")
    dovecot.append("VLeads", first)
    wait_for(lambda: home.tagged("VLeads", message_id_of(first), "CRM_sync"), what="first tagged")

    dovecot.stop()
    wait_for(lambda: not home.source_status()["folders"]["VLeads"]["connected"], what="the gateway noticing")
    meanwhile = [make_mail(sender=f"M{i} <m{i}@m.org>", subject=f"Meanwhile {i}") for i in range(3)]
    for i, raw in enumerate(meanwhile):  # the delivery agent keeps delivering while IMAP is down
        dovecot.deliver("VLeads", raw, f"170000000{i}.M{i}P1.host")
    dovecot.start()

    for raw in meanwhile:
        wait_for(lambda raw=raw: home.tagged("VLeads", message_id_of(raw), "CRM_sync", "Synced"), 60, "mail from the outage")
    wait_for(lambda: home.source_status()["folders"]["VLeads"]["connected"], what="reconnected")
    after = make_mail(sender="Z <z@z.org>", subject="After")
    dovecot.append("VLeads", after)
    wait_for(lambda: home.tagged("VLeads", message_id_of(after), "CRM_sync"), what="push works again")
    home.stop()
    subjects = sorted(e["subject"] for e in home.dump()["emails"])
    assert subjects == sorted(["Before", "After", "Meanwhile 0", "Meanwhile 1", "Meanwhile 2"])
    assert home.states() == {"done": 5}


def test_uidvalidity_change_rescans_without_duplicates(imap_home, dovecot):
    home = imap_home()
    home.start()
    home.wait_idle("VLeads")
    raws = [make_mail(sender=f"U{i} <u{i}@u.org>", subject=f"Mail {i}") for i in range(3)]
    for raw in raws:
        dovecot.append("VLeads", raw)
    for raw in raws:
        wait_for(lambda raw=raw: home.tagged("VLeads", message_id_of(raw), "CRM_sync"), what="tagged")
    old, new = dovecot.recreate("VLeads", keep_flags=False)  # the same mail, keywords lost
    assert old != new
    assert not any(home.tagged("VLeads", message_id_of(r), "CRM_sync") for r in raws)
    for raw in raws:  # the new copies are known mail: tagged again, stored once
        wait_for(lambda raw=raw: home.tagged("VLeads", message_id_of(raw), "CRM_sync", "Synced"), 60, "re-tagged")
    wait_for(lambda: home.source_status()["folders"]["VLeads"]["uidvalidity"] == new, what="the new UIDVALIDITY")
    home.stop()
    assert sorted(e["subject"] for e in home.dump()["emails"]) == ["Mail 0", "Mail 1", "Mail 2"]
    led = home.ledger()
    try:
        assert len(led.messages_in(["done"])) == 3
    finally:
        led.close()


def test_two_accounts_in_one_gateway_each_pushed_a_mail_both_got_stored_once(imap_home, dovecot):
    def account(user: str) -> dict:
        return {
            "name": f"{user}-mail",
            "type": "imap",
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": user,
            "password": dovecot.users[user],
            "owner": [f"{user}@example.com"],
            "crm_user": f"{user}@example.com",
            "folders": ["VLeads"],
            "create_folders": True,
            "poll_interval": 1,
        }

    home = imap_home(extra={"sources": [account("alice"), account("bob")]})
    home.start()
    for i in range(2):
        wait_for(lambda i=i: home.gw.sources[i].folders["VLeads"].connected, what="both accounts connected")
    own_a = make_mail(sender="Ann <ann@a.org>", to=["alice@example.com"], subject="For Alice")
    own_b = make_mail(sender="Ben <ben@b.org>", to=["bob@example.com"], subject="For Bob")
    shared = make_mail(sender="Cy <cy@c.org>", to=["alice@example.com", "bob@example.com"], subject="For both")
    dovecot.append("VLeads", own_a, user="alice")
    dovecot.append("VLeads", own_b, user="bob")
    dovecot.append("VLeads", shared, user="alice")
    dovecot.append("VLeads", shared, user="bob")

    for user, raws in (("alice", (own_a, shared)), ("bob", (own_b, shared))):
        for raw in raws:
            wait_for(
                lambda user=user, raw=raw: (
                    {"CRM_sync", "Synced"} <= dovecot.flags("VLeads", user=user).get(message_id_of(raw), set())
                ),
                what=f"keywords in {user}'s mailbox",
            )
    assert sorted(e["subject"] for e in home.dump()["emails"]) == ["For Alice", "For Bob", "For both"]
    assert home.states() == {"done": 4}  # four copies, three mails
    home.gw.write_status()
    st = {s["name"]: s for s in home.status_json()["sources"]}
    assert {n: (s["account"], s["connected"]) for n, s in st.items()} == {
        "alice-mail": ("alice", True),
        "bob-mail": ("bob", True),
    }
