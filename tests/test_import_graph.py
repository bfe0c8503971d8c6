"""No import cycles among convolab's modules, function-level imports included.

The module graph is read from the source with :mod:`ast`, never by importing it, so an import
hidden inside a function (the usual way a cycle is kept from failing at import time) counts the
same as one at the top of the file.

How an import becomes an edge from the importing module ``m``:

- ``import a.b.c`` is an edge to ``a.b.c`` (or, where that is not a module, to the longest
  prefix that is one).
- ``from pkg import name`` is an edge to ``pkg.name`` when that is a submodule, else to ``pkg``
  itself (its ``__init__``): the name is then something the package's ``__init__`` defines or
  re-exports.
- Relative imports are resolved against ``m``'s package first (``from .x import y`` inside
  ``convolab/saving/model_io.py`` is ``from convolab.saving.x import y``).
- Only edges between convolab's own modules count; a module importing itself is ignored.

Package ``__init__`` re-exports, the rule: an edge goes to the module named, not to the packages
above it. Python does run ``convolab/layers/__init__.py`` before ``convolab/layers/base.py``, but
that is load order, not a dependency the code chose, and counting it would tie every module to
its own package. A module that imports a *name* from its own package's ``__init__`` (``from .
import Dense`` inside ``convolab/layers/conv.py``, or ``from convolab.layers import Dense``) does
depend on that ``__init__``, which imports the module back: that is a real cycle, and this test
reports it. Import the sibling module directly instead (``from .dense import Dense``).

``TYPE_CHECKING`` blocks are counted too: there are none today, and a type that needs one to
avoid a cycle is a sign that the boundary is in the wrong place.

Run as a script to see the graph's layering, from the bottom layer (modules importing nothing of
convolab's) upwards; ``--edges`` adds each module's imports::

    python tests/test_import_graph.py --print [--edges]
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "convolab"
# the repository's src/ folder, wherever under the repository this file sits
ROOT = next(parent / "src" for parent in Path(__file__).resolve().parents if (parent / "src" / PACKAGE).is_dir())


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of ``package`` under ``root``: ``{dotted name: file}`` (``__init__`` as the package)."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name ``from <level dots><target> import ...`` means inside ``module``."""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    if not base:
        raise ValueError(f"{module}: relative import of level {level} goes above the top package")
    return ".".join(base + ([target] if target else []))


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` if it is one of our modules, else its longest prefix that is, else None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``module`` imports anywhere in its file (see the rules above)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets.add(_known(alias.name, modules))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                source = _resolve_relative(module, _is_package(path), node.level, node.module)
            else:
                source = node.module
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.add(submodule if submodule in modules else _known(source, modules))
    targets.discard(None)
    targets.discard(module)
    return targets


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """``{module: set of our modules it imports}`` for every module of ``package``."""
    modules = module_files(root, package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted, in reverse topological order.

    Iterative, so a deep import chain cannot hit the recursion limit.
    """
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, largest first."""
    found = [c for c in strongly_connected(graph) if len(c) > 1]
    return sorted(found, key=lambda c: (-len(c), c))


def layers(graph: dict[str, set[str]]) -> list[list[str]]:
    """Modules by layer: layer 0 imports none of ours; layer k only modules of layers below k.

    The members of a cycle share one layer (the graph is taken over its components).
    """
    component_of = {}
    for component in strongly_connected(graph):  # reverse topological: dependencies come first
        for member in component:
            component_of[member] = tuple(component)
    depth = {}
    for component in strongly_connected(graph):
        below = {component_of[t] for m in component for t in graph[m]} - {tuple(component)}
        depth[tuple(component)] = 1 + max((depth[c] for c in below), default=-1)
    result = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for module, component in component_of.items():
        result[depth[component]].append(module)
    return [sorted(layer) for layer in result]


def describe_cycle(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    lines = [f"{len(component)} modules in one cycle:"]
    for module in component:
        inside = sorted(graph[module] & members)
        lines.append(f"  {module} -> {', '.join(inside)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Tests: the checker on hand-made graphs and packages, then convolab itself.


def test_strongly_connected_finds_each_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": {"d"}, "f": set(), "g": {"g"}}
    assert cycles(graph) == [["a", "b", "c"], ["d", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_layers_put_each_module_above_what_it_imports():
    graph = {"a": set(), "b": {"a"}, "c": {"a", "b"}, "d": {"a"}}
    assert layers(graph) == [["a"], ["b", "d"], ["c"]]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_function_level_and_relative_imports_are_edges(tmp_path):
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "def f():\n    from .sub import b\n    return b\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/b.py": "def g():\n    from ..a import f\n    import pkg.c\n",
            "pkg/c.py": "import os\nfrom pkg.sub import b as bb\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.a", "pkg.c"}
    assert graph["pkg.c"] == {"pkg.sub.b"}
    assert cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_a_name_from_the_own_package_init_is_a_cycle(tmp_path):
    """``from . import Dense`` reaches the ``__init__``, which imports the module back."""
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from .dense import Dense\nfrom .conv import Conv\n",
            "pkg/dense.py": "class Dense: pass\n",
            "pkg/conv.py": "def f():\n    from . import Dense\n",
        },
    )
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.conv"] == {"pkg"}
    assert cycles(graph) == [["pkg", "pkg.conv"]]
    # The sibling imported directly is no cycle; nor is the package's load order.
    (tmp_path / "pkg/conv.py").write_text("def f():\n    from .dense import Dense\n", encoding="utf-8")
    assert cycles(import_graph(tmp_path, "pkg")) == []


def test_convolab_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 100, f"expected convolab's modules under {ROOT}; found {len(graph)}"
    found = cycles(graph)
    assert not found, "import cycles among convolab's modules:\n" + "\n".join(describe_cycle(c, graph) for c in found)


@pytest.mark.parametrize(
    "code",
    [
        # Tensor's operators are installed by autodiff.functions (tensor.py cannot import it)
        "import numpy as np; from convolab.autodiff.tensor import Variable; from convolab.autodiff.tape import GradientTape; "
        "v = Variable(np.ones(2))\nwith GradientTape() as tape: y = -(-(v * 3)[0]) + v.T @ v - 1 / v[1]\n"
        "assert np.allclose(tape.gradient(y, [v])[0], [5.0, 3.0])",
        # layers call keras_tensor for symbolic inputs; keras.Input lives beside InputLayer
        "from convolab.layers.input_layer import Input; from convolab.layers.dense import Dense; "
        "assert Dense(3)(Input(shape=(4,))).shape == (None, 3)",
        # the models reach convolab.saving through the registry it fills when imported
        "from convolab.models.persistence import _functions; "
        "assert sorted(_functions) == ['export_model', 'load_weights', 'save_model', 'save_weights']",
    ],
)
def test_modules_import_on_their_own(code):
    """The seams cut above hold at run time: each snippet in a fresh interpreter, importing only what it names."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_model_save_without_the_saving_package_says_so(monkeypatch, tmp_path):
    from convolab.models import persistence
    from convolab.models.sequential import Sequential
    from convolab.layers.dense import Dense

    model = Sequential([Dense(2, input_shape=(3,))])
    monkeypatch.setattr(persistence, "_functions", {})
    with pytest.raises(RuntimeError, match="save_model is provided by convolab.saving"):
        model.save(tmp_path / "m.convolab")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="print the layering of the module graph")
    parser.add_argument("--edges", action="store_true", help="with --print: each module's imports too")
    args = parser.parse_args(argv)
    graph = import_graph()
    found = cycles(graph)
    if args.print:
        for depth, layer in enumerate(layers(graph)):
            if args.edges:
                print(f"layer {depth}:")
                for module in layer:
                    print(f"  {module}" + (f" -> {', '.join(sorted(graph[module]))}" if graph[module] else ""))
            else:
                print(f"layer {depth}: {', '.join(m.removeprefix(PACKAGE + '.') for m in layer)}")
    edges = sum(len(targets) for targets in graph.values())
    print(f"{len(graph)} modules, {edges} import edges, {len(found)} cycle(s)")
    for component in found:
        print(describe_cycle(component, graph))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
