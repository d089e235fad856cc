"""config.yaml: the typed document (model.py: the mailboxes' and CRM backends' models in one
union), read with `${ENV}` and positioned errors (load.py) and the load-time checks
(checks.py); and what is built straight from it for the rules: the rules in force
(rulesholder.py), a copy's EvalContext (context.py), `check`'s unwatched-folder warning
(rule_folders.py).

`Config`, `load_config` and `default_config_path` are importable from here."""

from gateway.config.load import default_config_path, load_config
from gateway.config.model import Config, LedgerConfig, RetryConfig, TagsConfig, WebConfig

__all__ = ["Config", "LedgerConfig", "RetryConfig", "TagsConfig", "WebConfig", "default_config_path", "load_config"]
