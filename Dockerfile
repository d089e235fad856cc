# crm-mail-gateway. See "Deployment" in the README, and compose.yaml for an example with PostgreSQL.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# tini as PID 1: forwards SIGTERM to the gateway alone (which ends its worker processes itself)
# and reaps what the worker processes' fork server leaves behind.
RUN apt-get update && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid 10001 gateway
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install .
COPY rules ./rules
COPY deploy/config.docker.yaml ./config.yaml
COPY deploy/healthcheck.py ./healthcheck.py
# /app/var: ledger and CRM (SQLite), spool; /srv/mail: the Maildir. Both belong to uid 10001.
RUN mkdir -p /app/var /srv/mail && chown -R gateway:gateway /app/var /srv/mail
USER 10001
VOLUME ["/app/var"]
EXPOSE 2525 8025
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["python", "/app/healthcheck.py"]
ENTRYPOINT ["tini", "--", "crm-gateway"]
CMD ["run", "-c", "/app/config.yaml"]
