"""``python -m analyzer`` is the ``exchange-analyzer`` command."""
from .cli import main

if __name__ == "__main__":
    main()
