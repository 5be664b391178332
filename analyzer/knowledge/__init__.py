"""Knowledge data: event catalog, RPC interface UUIDs, CLSIDs, registry paths.

Domain facts live in YAML files beside this module, not as literals scattered
through the code, so that a support engineer can review and extend them
without reading Python. :func:`load` caches each file.
"""
from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

#: LibYAML's parser when PyYAML was built with it: the same safe schema, a
#: tenth of the time (the pure-Python parser took 0.14 s of every command's
#: start on the event catalog and its kin).
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def load(name: str) -> Any:
    """Parsed content of ``analyzer/knowledge/<name>.yaml``."""
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
