"""What the fork server loads before it forks worker processes (`gateway.workers`).

Imported once there, the modules every worker needs cost no import time per worker. Then the
collector freezes what is loaded: objects in the permanent generation are never traversed by
the garbage collector, so a forked worker does not write to (and copy) the pages they share.
"""

from __future__ import annotations

import gc

import gateway.crm.sql  # noqa: F401
import gateway.pipeline  # noqa: F401
import gateway.pipeline_batch  # noqa: F401
import gateway.service  # noqa: F401
import gateway.sources.imap  # noqa: F401
import gateway.writeback.imap  # noqa: F401

gc.collect()
gc.freeze()
