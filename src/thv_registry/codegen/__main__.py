"""``python -m thv_registry.codegen REQUEST_JSON OUT_DIR``: write the typed query package.

Run by ``task gen`` after ``sqlc generate``; ``--root`` is the directory of sqlc.yaml (the
query paths in the request are relative to it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import CodegenError, generate, load_request, write_package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m thv_registry.codegen",
        description="Generate typed psycopg query functions from sqlc's codegen request.",
    )
    parser.add_argument("request", type=Path, help="sqlc's codegen_request.json (gen.json)")
    parser.add_argument("out", type=Path, help="package directory to write")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="directory of sqlc.yaml")
    args = parser.parse_args(argv)
    try:
        files = generate(load_request(args.request), args.root)
    except CodegenError as exc:
        print(f"codegen: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    written = write_package(files, args.out)
    print(f"codegen: wrote {len(written)} modules to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
