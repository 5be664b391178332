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


@cache
def load(name: str) -> Any:
    """Parsed content of ``analyzer/knowledge/<name>.yaml``."""
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)
