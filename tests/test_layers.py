"""The layers point one way: app -> webui -> summarizer <- training, and tests on top.

Read from the source (function-level imports included), so a lazy import that closes a cycle or
reaches up a layer is caught as surely as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("summarizer", "training", "webui", "tools")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[_module_name(path)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets.add(prefix)
            targets.update(f"{prefix}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in targets:
        while target and target not in known:  # `from pkg import name` names a module or not
            target = target.rpartition(".")[0]
        # A module's own packages are imported before it anyway: not an edge that can close a cycle.
        if target and target != name and not name.startswith(target + "."):
            resolved.add(target)
    return resolved


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules) | {"tests", "helpers", "conftest"}
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_layers_point_one_way():
    graph = _graph()
    wrong = []
    for module, targets in graph.items():
        top = module.split(".")[0]
        for target in targets:
            target_top = target.split(".")[0]
            if target_top in ("tests", "helpers", "conftest"):
                wrong.append(f"{module} imports the test helper {target}")
            if top == "summarizer" and target_top in ("training", "webui", "tools", "app"):
                wrong.append(f"the core module {module} imports {target}")
            if top in ("webui", "training") and target_top == "app":
                wrong.append(f"{module} imports app")
            if top == "training" and target_top == "webui":
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def test_the_layer_check_sees_lazy_imports(tmp_path):
    """The checker itself: a function-level relative import is found and resolved."""
    module = tmp_path / "mod.py"
    module.write_text("def f():\n    from ..training import run\n    import webui.common\n")
    found = _imports("summarizer.studio.mod", module,
                     {"summarizer.studio.mod", "summarizer.training", "training", "training.run",
                      "webui", "webui.common"})
    assert found == {"summarizer.training", "webui.common"}


def test_every_training_method_has_the_documented_shape():
    """training/methods/__init__.py's contract: the same names, and one `save` signature, in each."""
    import inspect

    from training.methods import METHODS

    shapes = {}
    for name, module in METHODS.items():
        assert module.NAME == name and isinstance(module.KIND, str)
        assert inspect.isclass(module.Config)
        for function in ("wrap", "save", "registry_entry"):
            assert callable(getattr(module, function, None)), f"{name} has no {function}"
        shapes[name] = list(inspect.signature(module.save).parameters)
    assert all(shape == ["model", "folder", "dtype", "max_shard_size", "state_dict"]
               for shape in shapes.values()), shapes


MAX_FUNCTION_LINES = 80


def test_no_function_is_longer_than_80_lines():
    """Small functions you can read top to bottom: none over 80 lines in the app and packages."""
    long = []
    for name, path in _modules().items():
        if not name.startswith(("app", "summarizer", "training", "webui")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
