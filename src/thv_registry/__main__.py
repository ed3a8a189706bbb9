"""``python -m thv_registry``: the same command line as ``thv-registry-api``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
