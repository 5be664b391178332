"""Source modules: one per artifact format, found by registration.

Every module in this package is imported in name order (deterministic), and
each registers its :class:`~analyzer.sources.base.Source` subclasses with
:func:`register`. A duplicate name is refused: two formats claiming the same
name would make the ``source`` column ambiguous.
"""
from __future__ import annotations

from .._plugins import import_all
from .base import Chunk, Options, ParseContext, Source, Warning_

__all__ = ["Chunk", "Options", "ParseContext", "Source", "Warning_", "register",
           "registered", "get", "sniff"]

_REGISTRY: dict[str, Source] = {}
_loaded = False


def register(cls: type[Source]) -> type[Source]:
    """Class decorator: register a source. Order of registration is kept."""
    name = getattr(cls, "name", None)
    if not name:
        raise ValueError(f"{cls.__name__} has no name")
    if name in _REGISTRY:
        raise ValueError(f"source name {name!r} is already registered "
                         f"by {type(_REGISTRY[name]).__name__}")
    _REGISTRY[name] = cls()
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import_all(__name__, __path__, frozenset({"base"}))


def registered() -> list[Source]:
    """All sources, in registration order."""
    _load_all()
    return list(_REGISTRY.values())


def get(name: str) -> Source:
    _load_all()
    return _REGISTRY[name]


def sniff(head: bytes, name: str,
          sources: list[Source] | None = None) -> tuple[Source | None, int]:
    """The source most confident that it can read this file (ties: the
    first registered). Returns (None, 0) when nobody claims it."""
    best: Source | None = None
    best_score = 0
    for src in sources if sources is not None else registered():
        try:
            score = int(src.sniff(head, name))
        except Exception:  # a sniffer bug must not hide the file from others
            score = 0
        if score > best_score:
            best, best_score = src, score
    return best, best_score

