"""Standard-library writers for Windows binary log/registry formats.

Used to build realistic samples and test inputs without a Windows machine.
"""

from .evt import EvtLog, EvtRecord, evt_bytes, write_evt
from .regf import RegKey, RegValue, hive_bytes, write_hive
from .evtx import EvtxEvent, evtx_bytes, write_evtx

__all__ = [
    "EvtLog",
    "EvtRecord",
    "evt_bytes",
    "write_evt",
    "RegKey",
    "RegValue",
    "hive_bytes",
    "write_hive",
    "EvtxEvent",
    "evtx_bytes",
    "write_evtx",
]
