"""Maildir trees on this machine: watched by inotify or polled; tags stay in the ledger and
`move` renames the file."""
