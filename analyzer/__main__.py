"""``python -m analyzer`` is the ``exchange-analyzer`` command."""
from .cli import run

if __name__ == "__main__":
    run()
