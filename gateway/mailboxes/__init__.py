"""Mailboxes: one package per protocol (imap, ews, graph, maildir, smtp), each with its source,
its write-back, its connection code, its config model and its `check`; base.py is the seam
they share with the gateway, registry.py finds a kind by its config `type`."""
