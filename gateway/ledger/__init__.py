"""The ledger: the truth of what happened to every mail, in SQLite or PostgreSQL.

- `store`: `Ledger`, every write (a short transaction returning what it wrote); `reads`: its reads.
- `states`: message and copy states, the transition tables and `IllegalTransition`.
- `rows`: the frozen rows handed out and the batch writes' items; `refs`: `SourceRef`.
- `claims`, `outcomes`: the batch writes of intake and of a message's progress.
- `schema`, `migrations`, `database`: the tables, their Alembic scripts, the connection.
- `spool`: raw mail as durable files; `locks`: per-address locks across workers;
  `groupcommit`: concurrent callers sharing one durable write; `work`: crash marks of work in hand.

The ledger imports no engine, CRM, pipeline, mailbox, runtime or face (pyproject.toml's
import-linter contracts).
"""

from gateway.ledger.refs import SourceRef
from gateway.ledger.rows import MESSAGE_ID_MAX, Bind, Binding, Finish, LocationRow, MessageRow, now
from gateway.ledger.states import (
    LOCATION_MOVES,
    LOCATION_OPEN,
    MESSAGE_MOVES,
    TERMINAL,
    IllegalTransition,
    LocationState,
    MessageState,
)
from gateway.ledger.store import Ledger

__all__ = [
    "LOCATION_MOVES",
    "LOCATION_OPEN",
    "MESSAGE_ID_MAX",
    "MESSAGE_MOVES",
    "TERMINAL",
    "Bind",
    "Binding",
    "Finish",
    "IllegalTransition",
    "Ledger",
    "LocationRow",
    "LocationState",
    "MessageRow",
    "MessageState",
    "SourceRef",
    "now",
]
