#!/usr/bin/env bash
# skinbench as a user gets it: build the sdist and the wheel (the wheel from the sdist), check what each holds,
# install the wheel (not editable) in a fresh virtual environment, and there run `bench --version`, the README's
# main job and `bench plugins`; then install the example plugin package against that wheel and run its own tests
# with that environment's python. .ci/run calls it; it also runs alone:
#
#   scripts/check-wheel.sh                      # PYTHON=python3.12 for another interpreter
#   CHECK_WHEEL_KEEP=1 scripts/check-wheel.sh   # keep the temporary folder (and print where) to look inside
#
# Needs `build` (the dev extra) for $PYTHON, and pip reaching an index: the fresh environment installs torch and
# the other dependencies itself (about 70 s and 6 GB on the 2-core CI machine; removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
unset PYTHONPATH PYTHONHOME BENCH_LOAD_PLUGINS VIRTUAL_ENV
export PIP_DISABLE_PIP_VERSION_CHECK=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/skinbench-wheel.XXXXXX")
cleanup() {
    if [ -n "${CHECK_WHEEL_KEEP:-}" ]; then
        echo "check-wheel: kept $WORK"
    else
        local t=$SECONDS
        rm -rf "$WORK"
        echo "check-wheel: removed its temporary folder ($((SECONDS - t)) s)"
    fi
}
trap cleanup EXIT
fail() { echo "check-wheel: FAILED: $*" >&2; exit 1; }
STEPS=()
START=$(date +%s)
LAST=$START
step() { echo; echo "== check-wheel: $*"; }
done_step() {
    local now line
    now=$(date +%s)
    line=$(printf '%-44s %4d s' "$1" $((now - LAST)))
    STEPS+=("$line")
    echo "-- $line"
    LAST=$now
}

VERSION=$("$PYTHON" -c '
try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
WHEEL=$WORK/dist/skinbench-$VERSION-py3-none-any.whl
SDIST=$WORK/dist/skinbench-$VERSION.tar.gz
VENV=$WORK/venv
VPY=$VENV/bin/python
export BENCH_CACHE_DIR=$WORK/cache  # no prepared data or generator from an earlier run

step "python -m build: sdist, then the wheel from it (skinbench $VERSION)"
"$PYTHON" -m build --outdir "$WORK/dist" . >"$WORK/build.log" 2>&1 || { tail -n 40 "$WORK/build.log"; fail "python -m build"; }
[ -f "$WHEEL" ] && [ -f "$SDIST" ] || { ls -l "$WORK/dist"; fail "expected $(basename "$WHEEL") and $(basename "$SDIST")"; }
if grep -q "Warning" "$WORK/build.log"; then  # shown, not fatal: a newer setuptools may deprecate what we use
    echo "check-wheel: WARNING: the build warns (fix pyproject.toml before the deadline it names):" >&2
    grep -B2 -A8 "Warning" "$WORK/build.log" | head -n 40 >&2
fi
done_step "build sdist + wheel"

step "what the wheel and the sdist hold"
"$PYTHON" - "$WHEEL" "$SDIST" "$VERSION" <<'EOF'
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

wheel, sdist, version = sys.argv[1:]
in_wheel = set(zipfile.ZipFile(wheel).namelist())
prefix = f"skinbench-{version}/"
in_sdist = {n.removeprefix(prefix) for n in tarfile.open(sdist).getnames() if n.startswith(prefix)}


def source(folder: str, top_level_only: bool = False) -> set[str]:
    """Every file of a package folder in the checkout (what a user must get), relative to the checkout."""
    files = Path(folder).glob("*" if top_level_only else "**/*")
    return {p.as_posix() for p in files if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


# Where each package of pyproject.toml lives in the checkout, and its name once installed.
packages = {"bench": source("bench"), "plugins": source("plugins", top_level_only=True), "registry": source("registry")}
installed = {"bench": "bench", "plugins": "bench_plugins", "registry": "bench_registry"}
missing = []
for folder, files in packages.items():
    for f in sorted(files):
        if installed[folder] + f[len(folder):] not in in_wheel:
            missing.append(f"wheel lacks {f} (as {installed[folder]}{f[len(folder):]}): a new package or data file? "
                           "list it in pyproject.toml (packages, package-data)")
        if f not in in_sdist:
            missing.append(f"sdist lacks {f}")
for needed in ("bench/schemas/results.schema.json", "bench/py.typed", "bench_registry/schema.json",
               "bench_plugins/unet.py", f"skinbench-{version}.dist-info/entry_points.txt"):
    if needed not in in_wheel:
        missing.append(f"wheel lacks {needed}")
allowed_top = {"bench", "bench_plugins", "bench_registry", f"skinbench-{version}.dist-info"}
extra = sorted(n for n in in_wheel if n.split("/")[0] not in allowed_top)
extra += sorted(f"sdist: {n}" for n in in_sdist
                if n.split("/")[0] in {"tests", "leaderboards", "runs", "docs", "scripts", "dist", "build", ".whl",
                                       ".ci", ".git"} or n.startswith("plugins/example-elastic"))
entry_points = zipfile.ZipFile(wheel).read(f"skinbench-{version}.dist-info/entry_points.txt").decode()
for group in ("[bench]", "[console_scripts]", "[pytest11]"):
    if group not in entry_points:
        missing.append(f"wheel's entry_points.txt lacks {group}")
if missing or extra:
    sys.exit("\n".join(missing + [f"does not belong in the package: {n}" for n in extra]))
count = Counter(n.split("/")[0] for n in in_wheel if not n.endswith("/"))
print(f"{Path(wheel).name}: {len(in_wheel)} files, {Path(wheel).stat().st_size / 1024:.0f} KiB "
      f"({', '.join(f'{k} {v}' for k, v in sorted(count.items()))}); "
      f"{Path(sdist).name}: {len(in_sdist)} entries, {Path(sdist).stat().st_size / 1024:.0f} KiB")
print("  data: " + ", ".join(sorted(n for n in in_wheel if not n.endswith(".py") and ".dist-info/" not in n)))
print("  sdist top level: " + ", ".join(sorted({n.split("/")[0] for n in in_sdist if n})))
EOF
done_step "check contents"

# What the checkout still has to give: the README's main job and a copy of the example plugin package (building it
# in place would leave build/ and *.egg-info there). Everything after runs in $WORK, so no `bench` folder in the
# current directory can shadow the installed one.
read -r -a JOB <<<"$(awk '/^## The main job/ { f = 1 } f && /^bench run / { print; exit }' README.md)"
[ "${#JOB[@]}" -gt 2 ] && [ "${JOB[0]}" = bench ] || fail "no 'bench run ...' line under README.md's '## The main job'"
mkdir "$WORK/example"
tar -C plugins/example-elastic --exclude build --exclude '*.egg-info' --exclude __pycache__ -cf - . |
    tar -C "$WORK/example" -xf -
cd "$WORK"

step "fresh virtual environment (no system site-packages); pip install the wheel"
"$PYTHON" -m venv "$VENV"
"$VPY" -m pip install -qq "$WHEEL"  # -qq: errors only (pip's index warnings are noise here)
done_step "venv + pip install wheel (torch included)"

step "skinbench comes from the wheel, in the environment"
check_installed() {
    "$VPY" -I - "$VENV" "$VERSION" <<'EOF'
import importlib.metadata as md
import json
import sys
from pathlib import Path

import bench
import bench_plugins
import bench_registry

venv, version = Path(sys.argv[1]).resolve(), sys.argv[2]
for module in (bench, bench_plugins, bench_registry):
    where = Path(module.__file__).resolve()
    assert venv in where.parents, f"{module.__name__} is imported from {where}, outside {venv}"
dist = md.distribution("skinbench")
assert dist.version == version == bench.__version__, (dist.version, version, bench.__version__)
direct = json.loads(dist.read_text("direct_url.json") or "{}")
assert "archive_info" in direct and direct.get("url", "").endswith(".whl"), f"not installed from the wheel: {direct}"
print(f"bench {bench.__version__} from {Path(bench.__file__).parent} ({direct['url'].rsplit('/', 1)[-1]})")
EOF
}
check_installed
got=$("$VENV/bin/bench" --version)
[ "$got" = "bench, version $VERSION" ] || fail "bench --version printed '$got'; pyproject.toml says $VERSION"
echo "$got"
done_step "bench --version"

step "the README's main job, in an empty folder"
echo "\$ ${JOB[*]}"
mkdir "$WORK/job"
(cd "$WORK/job" && "$VENV/bin/bench" "${JOB[@]:1}") 2>&1 | tee "$WORK/job.log"
record=$(sed -n 's/^record: //p' "$WORK/job.log" | tail -n 1)
[ -n "$record" ] && [ -f "$WORK/job/$record" ] || fail "the main job printed no record it wrote"
"$VPY" -I - "$WORK/job/$record" "$VERSION" <<'EOF'
import json
import sys

record = json.load(open(sys.argv[1]))
assert record["status"] == "finished" and 0.0 <= record["summary"]["jaccard"] <= 1.0, record["summary"]
assert record["env"]["skinbench"] == sys.argv[2] and record["env"]["git"] is None, record["env"]
assert record["plugins"]["unet"]["distribution"] == "skinbench", record["plugins"]["unet"]
EOF
done_step "the README's main job"

step "bench plugins"
"$VENV/bin/bench" plugins
"$VENV/bin/bench" --strict-plugins plugins --json | "$VPY" -I -c '
import json, sys
plugins = json.load(sys.stdin)
assert plugins and all(p["distribution"] == "skinbench" and not p["errors"] for p in plugins), plugins'
available=$("$VENV/bin/bench" plugins --available)
[[ $available == *bench-elastic* ]] || fail "bench plugins --available lacks bench-elastic: $available"
done_step "bench plugins"

step "the example plugin package, installed against the wheel, and its own tests"
# The wheel on the same command line: pip must satisfy the plugin's skinbench range with it, or fail; it never
# fetches another skinbench.
"$VPY" -m pip install -qq "$WHEEL" "$WORK/example[test]"
"$VPY" -m pip check
check_installed
"$VENV/bin/bench" --strict-plugins plugins --json | "$VPY" -I -c '
import json, sys
found = {p["name"]: p for p in json.load(sys.stdin)}
assert found["elastic"]["distribution"] == "bench-elastic", found.get("elastic")
assert found["elastic"]["registered"] == {"generators": ["elastic"]}, found["elastic"]
print("elastic", found["elastic"]["version"], "registered:", found["elastic"]["registered"])'
"$VPY" -m pytest -q -p no:cacheprovider "$WORK/example/tests"
done_step "example plugin: install + its tests"

echo
echo "== check-wheel: passed (skinbench $VERSION; wall times)"
printf '  %s\n' "${STEPS[@]}"
printf '  %-44s %4d s\n' "total" $(($(date +%s) - START))
