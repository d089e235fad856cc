"""What the admin commands do: explain, review, quarantine, reprocess, forget (operations.py)
and the status document (status.py). The CLI and the status page call the same functions."""
