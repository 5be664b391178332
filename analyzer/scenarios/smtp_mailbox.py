"""Sample cases for smtp-mailbox-stuck (being written)."""
SCENARIOS: list = []
