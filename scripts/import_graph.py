"""The shape of bench/'s import graph: modules, the longest import chain, the largest module.

    python scripts/import_graph.py [ROOT] [--top-level]

ROOT is a checkout (default: this one). Every ``import``/``from`` of a ``bench`` module counts, at module level
or inside functions (``--top-level``: module level only). Numbers quoted in docs/architecture.md come from here.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path


def graph(root: Path, top_level: bool) -> tuple[dict[str, Path], dict[str, set[str]]]:
    """Modules of ``root/bench`` by dotted name, and the bench modules each imports."""
    mods: dict[str, Path] = {}
    for path in (root / "bench").rglob("*.py"):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = path
    edges: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level else list(ast.walk(tree))
        for node in nodes:
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench"):
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("bench")]
            edges[name] |= {t for t in targets if t in mods and t != name and not name.startswith(t + ".")}
    return mods, edges


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = Path(args[0]) if args else Path(__file__).resolve().parent.parent
    mods, edges = graph(root, "--top-level" in sys.argv)

    @functools.lru_cache(maxsize=None)
    def chain(name: str, seen: frozenset[str] = frozenset()) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for target in edges[name] - seen:
            candidate = chain(target, seen | {name})
            best = candidate if len(candidate) > len(best) else best
        return (name, *best)

    longest = max((chain(m) for m in mods), key=len)
    code = {m: p for m, p in mods.items() if p.name != "__init__.py"}
    lines = {m: len(p.read_text().splitlines()) for m, p in code.items()}
    largest = max(lines, key=lines.__getitem__)
    print(f"modules: {len(code)} (and {len(mods) - len(code)} package __init__s)")
    print(f"longest import chain: {len(longest)}: {' -> '.join(longest)}")
    print(f"largest module: {largest}, {lines[largest]} lines; {sum(lines.values())} lines in all")


if __name__ == "__main__":
    main()
