"""``python -m scenarios [SAMPLES_DIR]``: regenerate the sample cases."""
import sys
from pathlib import Path

from . import regenerate

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("samples")
    for p in regenerate(out):
        print(p)
