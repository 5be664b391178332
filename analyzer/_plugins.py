"""Import every module of a plug-in package (sources, checks) in name order.

Name order makes registration order deterministic, so the same case always
sniffs and reports the same way whatever the file system's listing order.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable


def import_all(package: str, path: Iterable[str], skip: frozenset[str] = frozenset()) -> None:
    for mod in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if mod.name not in skip and not mod.name.startswith("_"):
            importlib.import_module(f"{package}.{mod.name}")
