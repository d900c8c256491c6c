"""The house's layering, computed from the code: every import (lazy ones inside functions and
``TYPE_CHECKING`` blocks included) points down, engine <- net <- commands <- render <- cli, and
no two modules import each other in a circle.  Read with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "siptool"

# Lower number = lower layer.  A module may import its own layer or any lower one.
LAYERS = {
    "engine": 0,  # errors, numbers, addr, terminal, sip/, stun/, capture/, media/: pure
    "net": 1,  # asyncio transports, resolver, failover
    "commands": 2,  # XOptions -> XResult, verdicts included
    "render": 3,  # XResult -> text / JSON / Nagios
    "cli": 4,  # click parameters -> XOptions, the runner
    "entry": 5,  # __main__, docgen
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:  # the siptool package itself (__version__)
        return "engine"
    top = parts[1]
    if top in ("net", "commands", "render", "cli"):
        return top
    if top in ("__main__", "docgen"):
        return "entry"
    return "engine"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every siptool module ``path`` imports, at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "siptool")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "siptool":
                continue
            found.add(target)
            for alias in node.names:  # `from siptool.render import decode_text`
                found.add(f"{target}.{alias.name}")
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports_of(path, name) if m in modules and m != name}
    return edges


def test_the_graph_is_read() -> None:
    edges = graph()
    assert "siptool.cli.run" in edges and "siptool.commands.options_ping" in edges
    assert "siptool.commands.options_ping" in edges["siptool.render.options_ping"]


def test_no_import_points_up_a_layer() -> None:
    upward = [
        f"{source} ({layer_of(source)}) imports {target} ({layer_of(target)})"
        for source, targets in graph().items()
        for target in sorted(targets)
        if LAYERS[layer_of(target)] > LAYERS[layer_of(source)]
    ]
    assert upward == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_every_command_is_three_files_and_no_middle_one() -> None:
    commands = PACKAGE / "commands"
    assert sorted(p.name for p in commands.glob("*_cli.py")) == []
    for cli_file in (PACKAGE / "cli").glob("*.py"):
        if cli_file.stem in ("__init__", "options", "run"):
            continue
        assert (commands / cli_file.name).exists(), f"commands/{cli_file.name} missing"
        renderers = list((PACKAGE / "render").glob(f"{cli_file.stem}*.py"))
        assert renderers, f"no render/{cli_file.stem}*.py"


# The documented hot-path parsers, where one long loop beats a call per field (issue 9).
LONG_FUNCTIONS_ALLOWED = ("sip/message.py", "sip/sdp.py", "capture/")
MAX_FUNCTION_LINES = 80


def test_no_function_is_longer_than_80_lines_outside_the_hot_path_parsers() -> None:
    long: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(LONG_FUNCTIONS_ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
