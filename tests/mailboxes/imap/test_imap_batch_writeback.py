"""The IMAP write-back of a batch against a real Dovecot: copies that share a folder and their
tags get one UID STORE; a copy the user moved to another watched folder is found there by
Message-ID and tagged, one moved out of every watched folder is reported gone."""

from __future__ import annotations

from tests.mailboxes.imap.fixtures import apply_tag_batch, five_in_vleads_two_dragged, message_id_of


def test_one_store_for_the_batch_and_moved_copies_found_or_reported_gone(imap_home, dovecot):
    raws, uids = five_in_vleads_two_dragged(dovecot, "P")
    with dovecot.client() as c:
        uidvalidity = int(c.select_folder("VLeads", readonly=True)[b"UIDVALIDITY"])
    requests, applied, stores, _ = apply_tag_batch(imap_home(), uidvalidity, uids, raws, "add_flags")

    assert stores[0] == uids  # one STORE for all five UIDs first
    assert all(a.ref == requests[n].ref for n, a in enumerate(applied[:3]))
    assert applied[3].ref is not None and applied[3].ref.folder == "VContacts"
    assert applied[4].ref is None and "no message with Message-ID" in applied[4].note
    assert all(a.tags == {"CRM sync", "Synced"} for a in applied)
    in_leads = dovecot.flags("VLeads")
    for raw in raws[:3]:
        assert {"CRM_sync", "Synced"} <= in_leads[message_id_of(raw)] and "\\Seen" not in in_leads[message_id_of(raw)]
    assert {"CRM_sync", "Synced"} <= dovecot.flags("VContacts")[message_id_of(raws[3])]
    assert dovecot.flags("Archive")[message_id_of(raws[4])] & {"CRM_sync", "Synced"} == set()
