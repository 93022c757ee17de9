"""List the library's functions longer than a limit (default 80 lines, docstring
included), longest first.

    python tests/long_functions.py            # qwem_lib, over 80 lines
    python tests/long_functions.py --max 60 path/to/package

A function may be longer only where splitting it would cost speed: a compiled
kernel's body, marked by a comment ``# kept whole: <why, with the measured cost>``
on the line above its ``def`` (or above its decorators).  Those are listed apart;
the exit status is 1 if any other function is over the limit.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import NamedTuple

MARKER = "# kept whole:"


class Long(NamedTuple):
    lines: int
    path: Path
    lineno: int
    name: str
    kept_whole: bool


def long_functions(root: Path, limit: int = 80) -> list[Long]:
    """Functions (methods and nested functions included) over ``limit`` lines."""
    found = []
    for path in sorted(Path(root).rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        tree = ast.parse(source)
        parents = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            n = node.end_lineno - node.lineno + 1
            if n <= limit:
                continue
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            above = lines[first - 2].strip() if first >= 2 else ""
            names, p = [node.name], parents.get(node)
            while p is not None and not isinstance(p, ast.Module):
                if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    names.append(p.name)
                p = parents.get(p)
            found.append(Long(n, path, node.lineno, ".".join(reversed(names)),
                              above.startswith(MARKER)))
    return sorted(found, key=lambda f: -f.lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", nargs="?", default=Path(__file__).parents[1] / "qwem_lib")
    p.add_argument("--max", type=int, default=80)
    args = p.parse_args(argv)
    found = long_functions(Path(args.root), args.max)
    bad = [f for f in found if not f.kept_whole]
    for f in found:
        tag = "  (kept whole)" if f.kept_whole else ""
        print(f"{f.lines:5d}  {f.path}:{f.lineno}  {f.name}{tag}")
    if not found:
        print(f"no function over {args.max} lines")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
