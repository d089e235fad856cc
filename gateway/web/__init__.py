"""The web face: the status page, the sign-in and the JSON API under /api/v1/, and Prometheus
metrics. `app` assembles; `auth` says who asks; `api` answers; `metrics` and `status_page` are
the two views kept from the read-only page."""
