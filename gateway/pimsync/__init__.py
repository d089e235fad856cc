"""The two-way sync of CRM records with the users' mailboxes (issue 16), beside the mail
pipeline and on the same ledger ideas: links, a journal of intents, cursors on both sides.

So far: contacts of the embedded CRM with CardDAV address books.
- vcard.py: contact fields ↔ vCard 3.0/4.0 (vobject), keeping what a card has beyond them;
- merge.py: the three-way merge per field against the last synced snapshot;
- book.py: one round for one address book (changes both ways, deletes, reassignments);
- replay.py: open journal intents redone at the start of a round;
- rounds.py: every configured address book, with the CRM and the ledger opened from config.
"""
