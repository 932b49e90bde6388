"""The registry of published plugin packages: every entry valid, `bench plugins --available` uses it."""

import json
import tomllib

import jsonschema
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import bench_registry
from conftest import ROOT, bench_cli

ENTRIES = bench_registry.entries()


def test_the_index_is_not_empty_and_names_are_unique():
    assert ENTRIES
    assert len({e["name"] for e in ENTRIES}) == len(ENTRIES)
    assert len({e["package"] for e in ENTRIES}) == len(ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_entry_matches_the_schema(entry):
    jsonschema.validate(entry, bench_registry.schema())


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_entry_is_named_after_its_package_and_bounds_skinbench_from_below(entry):
    assert (ROOT / "registry" / "entries" / f"{entry['package']}.json").is_file()
    spec = SpecifierSet(entry["skinbench"])  # PEP 440, beyond what the schema's pattern can check
    assert any(s.operator in (">=", "~=", "==", ">") for s in spec), "name the first skinbench release it works with"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e["homepage"].startswith("repo:")], ids=lambda e: e["name"])
def test_in_repository_entries_match_their_package(entry):
    project = tomllib.loads((ROOT / entry["homepage"].removeprefix("repo:") / "pyproject.toml").read_text())
    assert project["project"]["name"] == entry["package"]
    assert entry["name"] in project["project"]["entry-points"]["bench"]
    needs = [Requirement(r) for r in project["project"]["dependencies"] if Requirement(r).name == "skinbench"]
    assert [r.specifier for r in needs] == [SpecifierSet(entry["skinbench"])], "the range its pyproject declares"


def test_schema_rejects_a_bad_entry():
    bad = dict(ENTRIES[0], kinds=["gans"], homepage="ftp://x")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, bench_registry.schema())


def test_available_lists_indexed_plugins_that_are_not_installed():
    listed = json.loads(bench_cli("plugins", "--available", "--json").stdout)
    assert "bench-elastic" in {e["package"] for e in listed}
    text = bench_cli("plugins", "--available").stdout
    assert "bench-elastic" in text and "example, not on PyPI" in text


def test_contributing_shows_a_valid_entry():
    """CONTRIBUTING.md's example entry (its one ```json block) is what the schema accepts."""
    import re

    blocks = re.findall(r"```json\n(.*?)```", (ROOT / "CONTRIBUTING.md").read_text(), re.S)
    assert len(blocks) == 1
    entry = json.loads(blocks[0])
    jsonschema.validate(entry, bench_registry.schema())
    assert entry["status"] == "published" and SpecifierSet(entry["skinbench"])
