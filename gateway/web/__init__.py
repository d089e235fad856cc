"""The status page: what `status`, `review list` and `quarantine list` show, over HTTP, and
Prometheus metrics. Read-only: decisions stay on the command line."""
