"""Plug-in registries for sources and checks.

Every module of a plug-in package is imported in name order, so
registration order is deterministic: the same case always sniffs and
reports the same way whatever the file system's listing order. A duplicate
name is refused: two plug-ins answering to one name would make the
``source`` column or a check id ambiguous.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Instances of registered plug-in classes, keyed by a class attribute."""

    def __init__(self, package: str, path: Iterable[str], key: str, what: str,
                 skip: frozenset[str] = frozenset()) -> None:
        self.package, self.path, self.key, self.what, self.skip = package, list(path), key, what, skip
        #: key -> instance, in registration order.
        self.items: dict[str, T] = {}
        self._loaded = False

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator."""
        name = getattr(cls, self.key, None)
        if not name:
            raise ValueError(f"{cls.__name__} has no {self.key}")
        if name in self.items:
            raise ValueError(f"{self.what} {name!r} is already registered "
                             f"by {type(self.items[name]).__name__}")
        self.items[name] = cls()
        return cls

    def _load(self) -> None:
        if self._loaded:
            return
        for mod in sorted(pkgutil.iter_modules(self.path), key=lambda m: m.name):
            if mod.name not in self.skip and not mod.name.startswith("_"):
                # A plug-in that fails to import raises here, every time it
                # is asked for, rather than leaving a silently partial registry.
                importlib.import_module(f"{self.package}.{mod.name}")
        self._loaded = True

    def all(self) -> list[T]:
        self._load()
        return list(self.items.values())

    def get(self, name: str) -> T:
        self._load()
        return self.items[name]

    def __repr__(self) -> str:
        return f"<Registry of {self.what}s: {list(self.items)}>"
