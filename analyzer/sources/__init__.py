"""Source modules: one per artifact format, found by registration.

Every module in this package is imported in name order (deterministic), and
each registers its :class:`~analyzer.sources.base.Source` subclasses with
:func:`register`. A duplicate name is refused: two formats claiming the same
name would make the ``source`` column ambiguous.
"""
from __future__ import annotations

from .._plugins import Registry
from .base import Chunk, Options, ParseContext, Source, Warning_

__all__ = ["Chunk", "Options", "ParseContext", "Source", "Warning_", "register",
           "registered", "get", "sniff"]

_registry: Registry[Source] = Registry(__name__, __path__, "name", "source name",
                                      skip=frozenset({"base"}))
#: name -> source instance (tests may add to it).
_REGISTRY = _registry.items


def register(cls: type[Source]) -> type[Source]:
    """Class decorator: register a source. Order of registration is kept."""
    return _registry.register(cls)


def registered() -> list[Source]:
    """All sources, in registration order."""
    return _registry.all()


def get(name: str) -> Source:
    return _registry.get(name)


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

