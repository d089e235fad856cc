"""What the fork server loads before it forks worker processes (`gateway.runtime.processes`).

Imported once there, the modules every worker needs cost no import time per worker. Then the
collector freezes what is loaded: objects in the permanent generation are never traversed by
the garbage collector, so a forked worker's collections do not write to (and copy) the pages
it shares with the server. Using an object still changes its reference count and copies that
page; measured, the freeze kept ~25 MB shared (bench/pipeline.py, two workers).
"""

from __future__ import annotations

import gc

import gateway.crm.sql  # noqa: F401
import gateway.mailboxes.imap.source  # noqa: F401
import gateway.mailboxes.imap.writeback  # noqa: F401
import gateway.pipeline  # noqa: F401
import gateway.runtime.handler  # noqa: F401
import gateway.runtime.parts  # noqa: F401
import gateway.runtime.worker_process  # noqa: F401

gc.collect()
gc.freeze()
