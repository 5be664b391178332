"""Small Windows-shaped text artifacts shared by the batch and store tests."""
from __future__ import annotations

#: KB 926210's listing with the Information Store and System Attendant
#: interfaces missing (one address kept per interface).
RPCDUMP_MISSING = (
    "ncacn_ip_tcp(Connection-oriented TCP/IP)\r\n"
    "  10.0.100.32[3595] [38a94e72-a9bc-11d2-8faf-00c04fa378ff] MS Exchange MTA 'QAdmin' Interface :NOT_PINGED\r\n"
    "  10.0.100.32[3595] [9e8ee830-4459-11ce-979b-00aa005ffebe] MS Exchange MTA 'Mta' Interface :NOT_PINGED\r\n"
    "  10.0.100.32[1032] [f5cc5a18-4264-101a-8c59-08002b2f8426] MS Exchange Directory NSPI Proxy :NOT_PINGED\r\n"
    "  10.0.100.32[3518] [1544f5e0-613c-11d1-93df-00c04fd7bd09] MS Exchange Directory RFR Interface :NOT_PINGED\r\n"
)


def netstat_text(ports: list[int], pid_base: int = 800) -> str:
    """`netstat -ano` output with one listener per port."""
    lines = ["", "Active Connections", "",
             "  Proto  Local Address          Foreign Address        State           PID"]
    for i, port in enumerate(ports):
        lines.append(f"  TCP    0.0.0.0:{port:<17}0.0.0.0:0              LISTENING       {pid_base + i}")
    return "\r\n".join(lines) + "\r\n"
