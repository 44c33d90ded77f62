"""`python -m bench.loadgen`: see bench/loadgen/cli.py and docs/bench.md."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
