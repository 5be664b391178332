"""Diagnostic checks: one module per diagnosis, found by registration.

A check declares what it is (id, title, description, the row kinds it needs)
and returns findings for a case. It must never answer ``ok`` for lack of
evidence: when nothing of its world is in the case it says ``not_applicable``;
when its world is there but the deciding evidence is not, it says
``inconclusive`` and lists what to ``collect``.

Checks are built on the shared toolkit in :mod:`analyzer.checks.toolkit`
(per-host facts, one function per cause, the finding builder, applicability
and absence rules); CONTRIBUTING.md ("Add a check") shows how.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .._plugins import Registry
from ..findings import Finding

if TYPE_CHECKING:
    from ..case import Case

__all__ = ["Check", "register", "registered", "get"]



class Check:
    """Base class. Subclasses set the class attributes and implement run()."""

    id: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str]
    #: Row kinds (table ``kind`` values) the check reads.
    needs: ClassVar[tuple[str, ...]] = ()
    #: KB articles and documents the check encodes.
    references: ClassVar[tuple[str, ...]] = ()

    def run(self, case: "Case") -> list[Finding]:
        raise NotImplementedError


_registry: Registry[Check] = Registry(__name__, __path__, "id", "check id")
#: id -> check instance (tests may add to it).
_REGISTRY = _registry.items


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: register a check; duplicate ids are refused."""
    return _registry.register(cls)


def registered() -> list[Check]:
    return _registry.all()


def get(check_id: str) -> Check:
    return _registry.get(check_id)
