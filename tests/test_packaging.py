"""What a plugin package may rely on: the example imports skinbench only through ``bench.api`` and ``bench.testing``,
and declares a skinbench range that admits this version. (The wheel itself is built, installed in a fresh
environment and exercised by ``scripts/check-wheel.sh``, which ``.ci/run`` calls.)"""

import ast
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import ROOT

EXAMPLE = ROOT / "plugins" / "example-elastic"
PUBLIC = {"bench.api", "bench.testing"}


def bench_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of skinbench's ``bench`` package in ``path``, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name == "bench" or a.name.startswith("bench.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "bench":  # from bench import api -> bench.api
                out += [(node.lineno, f"bench.{a.name}") for a in node.names]
            elif node.module.startswith("bench."):
                out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize("path", sorted(EXAMPLE.rglob("*.py")), ids=lambda p: str(p.relative_to(EXAMPLE)))
def test_the_example_plugin_imports_only_the_public_api(path):
    private = [f"{path.relative_to(ROOT)}:{line} imports {module}" for line, module in bench_imports(path)
               if module not in PUBLIC]
    assert not private, ("a plugin package imports only bench.api and bench.testing (add what it needs there):\n"
                         + "\n".join(private))


def test_the_import_check_sees_every_form(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import bench.data\nfrom bench import api, gan\nfrom bench.api import hookimpl\n"
                      "import bench_elastic\nfrom .bench import x\ndef f():\n    from bench.gan.cache import y\n")
    assert sorted(m for _, m in bench_imports(source)) == ["bench.api", "bench.api", "bench.data", "bench.gan",
                                                           "bench.gan.cache"]


def test_the_example_plugin_admits_this_skinbench():
    ours = Version(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    needs = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "skinbench"]
    assert len(needs) == 1, "the example declares its skinbench range once"
    spec = needs[0].specifier
    assert ours in spec, f"skinbench {ours} is outside the example plugin's range {spec}: review it and the registry"
    assert any(s.operator == "<" for s in spec), "an upper bound: the next major release may change bench.api"
