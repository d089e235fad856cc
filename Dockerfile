FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 gateway
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install .
COPY rules ./rules
COPY config.example.yaml ./
RUN mkdir -p /app/var && chown -R gateway:gateway /app/var
USER gateway
VOLUME ["/app/var"]
EXPOSE 2525 8025
ENTRYPOINT ["crm-gateway"]
CMD ["run"]
