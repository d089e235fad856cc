"""The `crm:` section of config.yaml: one model per backend, picked by `backend`.

Each connector reads only its own model (sql: url; tryton, vtiger, odoo and webhook reach a
server at `url` within `timeout`). gateway/config/model.py assembles the union from `MODELS` with
`backend_tag` as its discriminator.

Two habits of the single model that came before are kept on purpose, so a config that loaded
then loads now:
- a key another backend uses is accepted (typed as that backend types it) and ignored, so a
  config switched from one backend to another keeps loading; a key no backend knows is an error;
- a backend without a model here (a connector module added to gateway/crm/ registers itself
  by name) gets `CrmConfig`, every key of every backend; an unknown name is then reported by
  the load-time checks, with the backends known.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator, model_validator

from gateway.reading.config_base import Model, Size, parse_size, read_secret_files

__all__ = [
    "MODELS",
    "OTHER",
    "CrmBase",
    "CrmConfig",
    "OdooConfig",
    "SqlConfig",
    "TrytonConfig",
    "VtigerConfig",
    "WebhookConfig",
    "backend_tag",
]

SECRETS = ("password", "access_key", "api_key", "secret")  # each may be given as <name>_file


class CrmBase(Model):
    """What every backend has: where the CRM is (a database URL or a server's)."""

    url: str = "sqlite:///var/crm.db"

    @model_validator(mode="before")
    @classmethod
    def _secrets_and_other_backends_keys(cls, data: Any) -> Any:
        # every `*_file` is read whatever the backend, as one model did: a bad path is an error
        data = read_secret_files(data, SECRETS)
        if not isinstance(data, dict):
            return data
        foreign = set(CrmConfig.model_fields) - set(cls.model_fields)
        others = {k: v for k, v in data.items() if k in foreign}
        if others:  # still typed as one model typed them: `timeout: abc` is an error on sql too
            CrmConfig.model_validate(others)  # its errors carry this section's location
        return {k: v for k, v in data.items() if k not in foreign}


class _Remote(CrmBase):
    timeout: float = 30.0  # seconds per request to the CRM's server


class _TrytonKeys(_Remote):
    database: str | None = None
    username: str | None = None
    password: str | None = None
    company: int | None = None
    # who may pick a record in the console and the API: everyone (Tryton gives a party no
    # owner), or admins only
    record_visibility: Literal["shared", "admins"] = "shared"


class _VtigerKeys(_Remote):
    username: str | None = None
    access_key: str | None = None
    dialect: Literal["vtiger", "vtenext"] | None = None


class _OdooKeys(_Remote):
    database: str | None = None
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    protocol: Literal["json2", "jsonrpc"] | None = None  # json2 (19+, api_key) or jsonrpc; default by which secret is set


class _WebhookKeys(_Remote):
    secret: str | None = None
    max_inline: Size = 5 * 1024**2
    attachment_url: str | None = None  # where the gateway serves attachments over max_inline ({sha256} filled in)

    @field_validator("max_inline", mode="before")
    @classmethod
    def _size(cls, v: Any) -> int:
        return parse_size(v)


class SqlConfig(CrmBase):
    backend: Literal["sql"] = "sql"


class TrytonConfig(_TrytonKeys):
    backend: Literal["tryton"]


class VtigerConfig(_VtigerKeys):
    backend: Literal["vtiger"]


class OdooConfig(_OdooKeys):
    backend: Literal["odoo"]


class WebhookConfig(_WebhookKeys):
    backend: Literal["webhook"]


class CrmConfig(_TrytonKeys, _VtigerKeys, _OdooKeys, _WebhookKeys):
    """A backend without a model of its own: every key (see the module's docstring)."""

    backend: str = "sql"


MODELS: dict[str, type[CrmBase]] = {
    "sql": SqlConfig,
    "tryton": TrytonConfig,
    "vtiger": VtigerConfig,
    "odoo": OdooConfig,
    "webhook": WebhookConfig,
}
OTHER = "other backend"  # the tag of CrmConfig: not a name a backend can have (it has a space)


def backend_tag(value: Any) -> str:
    """Which model reads this `crm:` value: its backend's, `sql` when none is named, else CrmConfig
    (which reports a backend that is not a string, or a value that is not a mapping, as before)."""
    if isinstance(value, CrmBase):  # a model already: its own
        return next((tag for tag, model in MODELS.items() if type(value) is model), OTHER)
    backend = value.get("backend", "sql") if isinstance(value, dict) else None
    return backend if isinstance(backend, str) and backend in MODELS else OTHER
