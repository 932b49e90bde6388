"""The layout of bench/: packages by concern, each importing only the packages below it."""

import ast
from pathlib import Path

import bench

ROOT = Path(bench.__file__).parent
LAYERS = ["errors", "storage", "data", "plugin", "config", "scoring", "gan", "results", "train", "apply", "sweep", "cli"]
"""Bottom to top: a package may import those before it (``bench.api`` and ``bench.testing``, the plugin
authors' modules, and ``__main__`` may import any)."""


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench"):
            names = [node.module] if node.module != "bench" else [f"bench.{a.name}" for a in node.names]
            out |= {n.split(".")[1] for n in names if n.count(".") >= 1}
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("bench.")}
    return out


def test_every_package_imports_only_the_layers_below_it():
    broken = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if len(parts) == 1:
            continue  # api, testing, errors, __main__, __init__
        layer = parts[0]
        assert layer in LAYERS, f"bench/{layer}/ is not in the layer list of this test"
        allowed = set(LAYERS[: LAYERS.index(layer) + 1])
        broken += [f"{path.relative_to(ROOT)} imports bench.{dst}" for dst in imports_of(path) - allowed]
    assert not broken, "\n".join(broken)


def test_every_package_says_what_lives_there_and_what_it_may_import():
    for package in ROOT.iterdir():
        if package.is_dir() and (package / "__init__.py").exists():
            doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
            assert len(doc) > 80 and "import" in doc, f"bench/{package.name}/__init__.py: say what lives there"


def test_every_package_ships_in_the_wheel():
    """pyproject lists packages by name: one left out installs in development (editable) and is missing from
    the wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {"bench." + p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert on_disk <= listed, f"add to pyproject's packages: {sorted(on_disk - listed)}"
