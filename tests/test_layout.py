"""The package's layout: no import loop, layers import only downwards, no long
function, and the command's parser loads neither numpy nor torch.

The import graph is read from the sources (imports inside functions included), by
code that shares nothing with the library's own reading of imports
(:func:`qwem_lib.runtime.cache.code_fingerprint`).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from long_functions import long_functions

PACKAGE = Path(__file__).resolve().parents[1] / "qwem_lib"

# Who may import whom: a module of a layer imports only modules of the layers named.
# The top level (the paper's objects) sits on corpus/, which sits on kernels/, which
# sits on runtime/; book/ and cli/ use everything and nothing uses them.
LAYERS = {
    "runtime": {"runtime"},
    "kernels": {"kernels", "runtime"},
    "corpus": {"corpus", "kernels", "runtime"},
    "top": {"top", "corpus", "kernels", "runtime"},
    "book": {"book", "top", "corpus", "kernels", "runtime"},
    "cli": {"cli", "top", "corpus", "kernels", "runtime"},
}


def modules(root: Path) -> dict[str, Path]:
    """Dotted module names (``qwem_lib.corpus.text``) of a package folder."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name,) + path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its source."""
    mods = modules(root)
    graph = {}
    for name, path in mods.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[:len(here) - node.level + 1]
                    base = ".".join(base + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # "from pkg import mod" imports the module pkg.mod, else pkg itself
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            else:
                continue
            edges |= {t for t in targets if t in mods and t != name}
        graph[name] = edges
    return graph


def loops(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer(name: str) -> str:
    parts = name.split(".")
    if len(parts) > 1 and parts[1] in LAYERS and parts[1] != "top" and (
            (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "top"


def test_no_import_loop():
    assert loops(import_graph(PACKAGE)) == []


def test_a_planted_loop_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("X = 1\n")
    (pkg / "c.py").write_text("import os\n")
    assert loops(import_graph(pkg)) == []
    # the loop closes through an import inside a function, two levels up
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import g\n    return g\n")
    assert loops(import_graph(pkg)) == [["pkg.a", "pkg.sub.b"]]


def test_layers_import_downwards():
    wrong = [f"{m} ({layer(m)}) imports {t} ({layer(t)})"
             for m, targets in import_graph(PACKAGE).items()
             for t in sorted(targets)
             if m != "qwem_lib" and m != "qwem_lib.__main__"
             and layer(t) not in LAYERS[layer(m)]]
    assert wrong == []


def test_no_library_function_over_80_lines():
    found = long_functions(PACKAGE, 80)
    assert [f"{f.path.relative_to(PACKAGE)}:{f.lineno} {f.name} ({f.lines} lines)"
            for f in found if not f.kept_whole] == []
    # only compiled kernels may be kept whole
    assert all(f.path.parent.name == "kernels" for f in found if f.kept_whole)


def test_the_long_function_script_finds_one(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(85))
    (tmp_path / "m.py").write_text(f"def short():\n    pass\n\n\ndef long():\n{body}\n")
    found = long_functions(tmp_path, 80)
    assert [(f.name, f.lines, f.kept_whole) for f in found] == [("long", 86, False)]
    (tmp_path / "m.py").write_text(f"# kept whole: a kernel\ndef long():\n{body}\n")
    assert long_functions(tmp_path, 80)[0].kept_whole


@pytest.mark.parametrize("argv", [["--help"], ["embed", "--help"], ["train", "--help"],
                                  ["embed", "--dim", "x"]])
def test_the_parser_loads_neither_numpy_nor_torch(argv):
    code = ("import sys\nfrom qwem_lib.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('numpy', 'torch', 'scipy', 'numba')\n"
            "               if m in sys.modules)\n"
            "print('loaded:', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "loaded: []", out.stdout + out.stderr
