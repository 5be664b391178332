"""The diagnosis toolkit every check is built on.

* facts — :class:`Host` (one machine's rows, events by provider alias, its
  registry knowing whether an absence is proof, :meth:`Host.absent`);
* causes — :class:`CauseTable` (one function per cause, declared with its
  id) returning a :class:`Verdict` (:func:`confirmed`, :func:`likely`,
  :func:`possible`, :func:`ruled_out`);
* findings — :func:`build_finding` (status, severity, ranking, evidence
  cited once, remediation merged once, collect), :func:`not_applicable`;
* world — :class:`World` (what a check applies to), decided per host;
* :class:`ToolkitCheck` — the base class that drives them.

CONTRIBUTING.md ("Add a check") walks through a new check.
"""
from ...registry import KeySpec
from .causes import (Absence, CauseTable, Verdict, as_evidence, confirmed, dedupe, likely,
                     possible, ruled_out)
from .check import ToolkitCheck, only_host
from .finding import (FindingParts, build_finding, merged_remediation, not_applicable, supported,
                      unique)
from .host import Host, clean, records
from .world import Applicability, World

__all__ = ["Absence", "Applicability", "CauseTable", "FindingParts", "Host", "KeySpec",
           "ToolkitCheck", "Verdict", "only_host", "World", "as_evidence", "build_finding", "clean",
           "confirmed", "dedupe", "likely", "merged_remediation", "not_applicable", "possible",
           "records", "ruled_out", "supported", "unique"]
