"""Database plumbing shared by the ledger and the embedded CRM: schema migrations run from
code and SQLite's writer lock. It imports no other part of the gateway."""
