"""CardDAV (RFC 6352) address books, the mailbox side of the contact sync: the config of an
address book (config.py) and a small WebDAV client on httpx (client.py) that lists changes
with sync-collection (RFC 6578) or, where a server has none, with etags."""
