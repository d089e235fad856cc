"""Tests of the mailbox packages (gateway/mailboxes/), one folder per protocol."""
