"""IMAP mailboxes: one connection per watched folder (IDLE or polling), tags written back as
keywords (Gmail: labels), `move` by MOVE or UIDPLUS; `check` logs in and asks what the server can do."""
