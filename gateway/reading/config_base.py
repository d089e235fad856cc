"""The parts every config model is built of: a strict frozen model, `*_file` secrets, sizes.

Kept apart from gateway/config/ so a mailbox package or a connector can define its own model
without importing the whole config (whose load-time checks know every connector).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.reading.boundedread import SECRET_MAX, UnreadableFile, read_text_bounded

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(B?)\s*$", re.I)


def parse_size(value: Any) -> int:
    """`50MB`, `10 K`, `1G`, 1234 → bytes; K/KB, M/MB, G/GB are powers of 1024."""
    if isinstance(value, bool):
        raise ValueError("a size is a number of bytes or like '10MB'")
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (write e.g. 512KB, 50MB, 1GB)")
    number, unit = float(m.group(1)), m.group(2).upper()
    return int(number * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit])


Size = Annotated[int, Field(ge=0)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def read_secret_files(data: Any, names: tuple[str, ...]) -> Any:
    """`password_file: /run/secrets/x` → `password: <file content, stripped>`.

    Only a regular file of at most SECRET_MAX bytes is read (not /dev/zero, not a FIFO).
    A message starts with the `*_file` key so gateway/config/load.py's `_describe` can place it on that key."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for name in names:
        file_key = f"{name}_file"
        if file_key in data:
            path = data.pop(file_key)
            if data.get(name):
                raise ValueError(f"{file_key}: give either {name} or {file_key}, not both")
            if not isinstance(path, str) or not path:
                raise ValueError(f"{file_key}: must be the path of a file, not {path!r}")
            try:
                data[name] = read_text_bounded(path, SECRET_MAX).strip()
            except UnreadableFile as exc:
                raise ValueError(f"{file_key}: cannot read {path}: {exc}") from None
            except UnicodeDecodeError as exc:
                raise ValueError(f"{file_key}: {path} is not UTF-8 text ({exc.reason})") from None
    return data
