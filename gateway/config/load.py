"""Reading config.yaml: `${ENV}` interpolation, positioned errors, the load-time checks.

`load_config` reports every mistake as FILE:LINE:COL: YAML with positions (gateway.reading),
the models' errors placed on their key, then what the models alone do not see
(gateway/config/checks.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gateway.config import checks as config_checks
from gateway.config.model import Config
from gateway.crm.config_models import MODELS as CRM_MODELS
from gateway.crm.config_models import OTHER, CrmConfig
from gateway.errors import ConfigError
from gateway.mailboxes.registry import MODELS
from gateway.reading import yamlpos
from gateway.reading.boundedread import CONFIG_MAX, MissingFile, UnreadableFile, read_text_bounded

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_CRM_TAGS = frozenset((*CRM_MODELS, OTHER))


def _interpolate(value: Any, path: tuple[Any, ...], pos: yamlpos.Positions, problems: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, path + (k,), pos, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path + (i,), pos, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        problems.append(f"{pos.where(path)}: environment variable {name} is not set (write ${{{name}:-default}} for a default)")
        return ""

    return _ENV.sub(replace, value)


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _describe(err: ErrorDetails, data: Any, pos: yamlpos.Positions) -> str:
    loc = [p for p in err["loc"] if not (isinstance(p, str) and p in MODELS)]
    if loc[:1] == ["crm"] and len(loc) > 1 and loc[1] in _CRM_TAGS:  # the union's tag, not a key
        del loc[1]
    dotted = ".".join(str(p) for p in loc) or "(top)"
    if err["type"] == "extra_forbidden":
        parent = loc[:-1]
        model = _model_at(parent, data)
        hint = _did_you_mean(str(loc[-1]), list(model.model_fields) if model else [])
        return f"{pos.where(loc, key=True)}: unknown key '{dotted}'{hint}"
    if err["type"] == "missing":
        return f"{pos.where(loc[:-1])}: missing key '{dotted}'"
    msg = err["msg"].removeprefix("Value error, ")
    first = msg.split(":", 1)[0]
    if first.endswith("_file") and " " not in first:  # from _read_secret_files: point at that key
        return f"{pos.where([*loc, first], key=True)}: {'.'.join([*map(str, loc), first])}: {msg.split(':', 1)[1].strip()}"
    return f"{pos.where(loc)}: {dotted}: {msg}"


def _model_at(path: list[Any], data: Any) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Config
    node = data
    for part in path:
        if model is None:
            return None
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if model is Config and path and path[0] == "sources":
                kind = node.get("type") if isinstance(node, dict) else None
                model = MODELS.get(kind) if isinstance(kind, str) else None
            continue
        field = model.model_fields.get(part)
        node = node.get(part) if isinstance(node, dict) else None
        if field is None:
            return None
        ann = field.annotation
        model = next((a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if part == "sources":
            model = Config
        if part == "crm":  # a union: hint among every backend's keys, as one model did
            model = CrmConfig
    return model


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; ConfigError lists every problem as FILE:LINE:COL."""
    path = Path(path)
    shown = str(path)
    try:
        text = read_text_bounded(path, CONFIG_MAX)
        data, pos = yamlpos.load_with_positions(text, shown)
    except MissingFile:
        raise ConfigError(f"{shown}: no such config file") from None
    except UnreadableFile as exc:
        raise ConfigError(f"{shown}:1:1: cannot read the config: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}:1:1: not UTF-8 text ({exc.reason})") from None
    except yamlpos.YamlSyntaxError as exc:
        raise ConfigError(f"{shown}:{exc.line}:{exc.col}: {exc.message}") from None
    if pos.problems:
        raise ConfigError(pos.problems[0], list(pos.problems))
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}:1:1: the config must be a mapping of keys")
    problems: list[str] = []
    data = _interpolate(data, (), pos, problems)
    if problems:
        raise ConfigError(problems[0], problems)
    for reserved in ("base_dir", "path"):
        if reserved in data:
            problems.append(f"{pos.where([reserved], key=True)}: unknown key '{reserved}'")
    if problems:
        raise ConfigError(problems[0], problems)
    try:
        config = Config.model_validate({**data, "base_dir": path.resolve().parent, "path": path.resolve()})
    except ValidationError as exc:
        problems = [_describe(e, data, pos) for e in exc.errors()]
        raise ConfigError(problems[0], problems) from None
    problems = [f"{pos.where(where)}: {message}" for where, message in config_checks.problems(config)]
    if problems:
        raise ConfigError(problems[0], problems)
    return config


def default_config_path() -> Path:
    for candidate in (Path("config.yaml"), Path("config.example.yaml")):
        if candidate.exists():
            return candidate
    return Path("config.yaml")
