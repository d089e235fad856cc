"""Components found by name, as config names them (Mailman's style): connectors by
`crm.backend`, sources by `type`. A component's module registers itself on import; a name
registered twice fails at import; an unknown name is looked for as a module first."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[F]):
    def __init__(self, what: str, package: str) -> None:
        self.what = what  # "connector", "source type": for messages
        self.package = package  # where a component named N lives: f"{package}.{N}"
        self._factories: dict[str, F] = {}

    def register(self, name: str) -> Callable[[F], F]:
        def decorate(factory: F) -> F:
            if name in self._factories:
                raise RuntimeError(f"{self.what} {name!r} registered twice")
            self._factories[name] = factory
            return factory

        return decorate

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> F | None:
        """The factory for `name`, importing its module when needed; None when there is none."""
        if name not in self._factories:
            with contextlib.suppress(ModuleNotFoundError):
                importlib.import_module(f"{self.package}.{name}")
        return self._factories.get(name)
