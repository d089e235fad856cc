"""Helpers the crm tests share (a test file never imports another test file).

- `OnADouble`: the connector contract against a local double of a CRM: the double (the
  module's `double` fixture) is the far side and `Inspector(double)` reads the records back; a
  subclass names its `Inspector` and gives the `connector` fixture.
- `sql_connector`: the embedded CRM on one of `sql_backends.BACKENDS`, closed afterwards.
- `all_at_once`: one call per item, each in its own thread, all let go at the same moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from gateway.crm.sql import SqlConnector
from tests.crm.contract import ConnectorContract, Inspector
from tests.crm.sql_backends import database_url

T = TypeVar("T")


class OnADouble(ConnectorContract):
    Inspector: ClassVar[Callable[[Any], Inspector]]

    @pytest.fixture
    def inspect(self, double: Any) -> Inspector:
        return type(self).Inspector(double)

    @pytest.fixture
    def far_side(self, double: Any) -> Any:
        return double


@contextmanager
def sql_connector(backend: str, tmp_path: Path) -> Iterator[SqlConnector]:
    with database_url(backend, tmp_path) as url, closing(SqlConnector(url)) as c:
        yield c


def all_at_once(work: Callable[[T], object], items: Sequence[T]) -> list[BaseException]:
    """Run `work(item)` for every item in a thread of its own, released together by a barrier;
    what they raised (empty when all went well)."""
    barrier = threading.Barrier(len(items))
    errors: list[BaseException] = []

    def run(item: T) -> None:
        try:
            barrier.wait()
            work(item)
        except BaseException as e:  # noqa: BLE001 - returned to the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
