"""The IMAP write-back of a batch against a real Dovecot: copies that share a folder and their
tags get one UID STORE; a copy the user moved to another watched folder is found there by
Message-ID and tagged, one moved out of every watched folder is reported gone."""

from __future__ import annotations

from tests.imap.test_imap_push import _mid
from tests.mail import make_mail

from gateway.writeback.base import TagRequest


def test_one_store_for_the_batch_and_moved_copies_found_or_reported_gone(imap_home, dovecot):
    raws = [make_mail(sender=f"P{i} <p{i}@firm.example>", subject=f"Batch {i}") for i in range(5)]
    uids = [dovecot.append("VLeads", raw) for raw in raws]
    dovecot.create("Archive")
    dovecot.create("VContacts")
    dovecot.move("VLeads", "VContacts", _mid(raws[3]))  # dragged to another watched folder
    dovecot.move("VLeads", "Archive", _mid(raws[4]))  # out of every watched folder
    home = imap_home()
    gw = home.gateway()
    try:
        writeback = gw.writebacks["mail"]
        source = gw.sources[0]
        with dovecot.client() as c:
            uidvalidity = int(c.select_folder("VLeads", readonly=True)[b"UIDVALIDITY"])
        requests = [TagRequest(source.ref("VLeads", uidvalidity, uid), frozenset(), frozenset({"CRM sync", "Synced"}),
                               frozenset({"CRM error"}), None, _mid(raw)) for uid, raw in zip(uids, raws)]
        stores: list[list[int]] = []
        client = writeback._conn()
        add_flags = client.add_flags

        def counted(messages, flags, silent=False):  # type: ignore[no-untyped-def]
            stores.append(list(messages))
            return add_flags(messages, flags, silent)

        client.add_flags = counted  # type: ignore[method-assign]
        applied = writeback.apply_many(requests)
    finally:
        gw.close()

    assert stores[0] == uids  # one STORE for all five UIDs first
    assert all(a.ref == requests[n].ref for n, a in enumerate(applied[:3]))
    assert applied[3].ref is not None and applied[3].ref.folder == "VContacts"
    assert applied[4].ref is None and "no message with Message-ID" in applied[4].note
    assert all(a.tags == {"CRM sync", "Synced"} for a in applied)
    in_leads = dovecot.flags("VLeads")
    for raw in raws[:3]:
        assert {"CRM_sync", "Synced"} <= in_leads[_mid(raw)] and "\\Seen" not in in_leads[_mid(raw)]
    assert {"CRM_sync", "Synced"} <= dovecot.flags("VContacts")[_mid(raws[3])]
    assert dovecot.flags("Archive")[_mid(raws[4])] & {"CRM_sync", "Synced"} == set()
