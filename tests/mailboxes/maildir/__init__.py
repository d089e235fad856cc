"""Maildir source and write-back (gateway/mailboxes/maildir/)."""
