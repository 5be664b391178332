"""The heap setting of a split .evtx read (process.keep_heap_pages): memory
a batch frees stays with the process for the next batch instead of being
given back and faulted in again."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

#: Batches of numpy temporaries (40 arrays of 2 MiB held, then freed), as a
#: batch of the table build makes them: prints the minor page faults they
#: cost.
BATCHES = """
import resource, sys
import numpy as np
from analyzer.sources.evtx.process import keep_heap_pages
if sys.argv[1] == "keep":
    assert keep_heap_pages()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(20):
    held = [np.ones(250_000, dtype=np.int64) for _ in range(40)]
    del held
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run([sys.executable, "-c", BATCHES, mode], capture_output=True, text=True,
                         env=env, timeout=120, check=True)
    return int(out.stdout.split()[-1])


def _glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError, AttributeError):
        return False


@pytest.mark.skipif(not _glibc(), reason="a glibc heap setting")
def test_freed_batch_temporaries_are_not_faulted_in_again():
    default, kept = _faults("default"), _faults("keep")
    # glibc's defaults give the freed 80 MiB back after every batch and
    # fault them in again (20k pages a batch); kept, the batches reuse them.
    assert default > 100_000, default
    assert kept * 5 < default, (kept, default)


def test_not_glibc_is_left_alone(monkeypatch):
    from analyzer.sources.evtx import process

    def no_confstr(name: str) -> str:
        raise ValueError(name)

    monkeypatch.setattr(process.os, "confstr", no_confstr)
    assert process.keep_heap_pages() is False
