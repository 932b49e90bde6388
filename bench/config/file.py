"""Run configuration files: ``bench run --config FILE.toml`` and the ``config.toml`` written beside each run.

A file holds the keys of a sweep grid's ``[run]`` table (any ``bench run`` option or profile setting), plus
``seed``, either at the top level or in a ``[run]`` table. The ``config.toml`` of a finished run holds its
resolved configuration (every setting, defaults filled in), so ``bench run --config RUN/config.toml``
runs the same experiment again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bench.config import profiles
from bench.config.layers import Layer
from bench.config.run import Execution, RunConfig
from bench.errors import ConfigError
from bench.config.options import cast_setting, unique_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FILE_NAME = "config.toml"
SEED_MAX = 2**32 - 1
"""The largest seed: numpy's and torch's generators are seeded with 32 bits."""
#: TOML's short escapes; any other control character is written ``\uXXXX``.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def check_seed(value: Any, where: str) -> int:
    """``value`` as a seed (an integer in 0..2**32-1), or a ConfigError naming ``where``: larger ones break numpy."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= SEED_MAX:
        raise ConfigError(f"{where}: seed must be an integer from 0 to {SEED_MAX} (2**32-1), got {value!r}")
    return value


def read_toml(path: Path, where: str) -> dict[str, Any]:
    """The TOML document at ``path``; an unreadable, non-UTF-8 or invalid file is an error naming ``where``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None


def read(path: Path) -> dict[str, Any]:
    """The settings of a configuration file, keys normalised and values cast; errors name the file and key."""
    data = read_toml(Path(path), f"--config {path}")
    if "run" in data:
        if set(data) - {"run", "description"} or not isinstance(data["run"], dict):
            raise ConfigError(f"--config {path}: expected the settings at the top level or in one [run] table; "
                              f"found {', '.join(sorted(data))}")
        data = data["run"]
    data.pop("description", None)
    unique_keys(data, f"--config {path}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "seed":
            out["seed"] = check_seed(value, f"--config {path}")
            continue
        if isinstance(value, (dict, list)):
            raise ConfigError(f"--config {path}: {key} must be a single value, got {type(value).__name__}")
        name, cast = cast_setting(key, value, f"--config {path}")
        out[name] = cast
    return out


def layer(path: Path) -> Layer:
    """The settings of ``path`` as the ``--config`` layer of the configuration pipeline."""
    return Layer(f"--config {path}", read(path))


def resolved(config: RunConfig, execution: Execution) -> dict[str, Any]:
    """Every setting of a run, as ``--config`` reads it back (values that are not set are left out)."""
    values: dict[str, Any] = {
        "gen": ",".join(config.gen) or "none", "seg": config.seg, "loss": config.loss, "schedule": config.schedule,
        "profile": config.profile, "seed": config.seed, "test": config.test,
        "subset": config.subset, "subset_seed": config.subset_seed if config.subset else None,
        "exclude": config.exclude.file if config.exclude else None, "weights": config.weights,
        "encoder_weights": config.encoder_weights,
        "fold": f"{config.fold[0]}/{config.fold[1]}" if config.fold else None,
        "fold_seed": config.fold_seed if config.fold else None,
        "device": execution.device, "cuda_graph": execution.cuda_graph, "bank_mb": execution.bank_mb,
        "save_predictions": execution.save_predictions, "log": ",".join(execution.log) or None,
    }
    for field in profiles.FIELDS:
        value = getattr(config, field.name)
        values[field.name] = "x".join(map(str, value)) if isinstance(value, tuple) else value
    return {k: v for k, v in values.items() if v is not None}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _basic_string(str(value))


def _control(c: str) -> bool:
    return ord(c) < 0x20 or c == "\x7f"


def _surrogate(c: str) -> bool:
    return 0xD800 <= ord(c) <= 0xDFFF


def _basic_string(text: str) -> str:
    """``text`` as a TOML basic string: every character literal (emoji too) but quotes, backslashes and controls."""
    return '"' + "".join(_ESCAPES.get(c) or (f"\\u{ord(c):04X}" if _control(c) else c) for c in text) + '"'


def _comment(line: str) -> str:
    """``line`` as TOML comment text: controls (tab aside) and unencodable characters shown as ``\\uXXXX``."""
    return "".join(f"\\u{ord(c):04X}" if (_control(c) and c != "\t") or _surrogate(c) else c for c in line)


def dumps(values: dict[str, Any], comment: str = "") -> str:
    """A ``[run]`` table of scalars as TOML text that ``tomllib`` reads back to the same values."""
    lines = [f"# {_comment(line)}" for line in comment.splitlines()] + ["[run]"]
    for key, value in values.items():
        if not isinstance(value, (bool, int, float)) and any(map(_surrogate, str(value))):
            raise ConfigError(f"{key} {value!r}: holds bytes that are not UTF-8 text (a file name in another "
                              "encoding?), which a TOML config.toml cannot record; rename it with UTF-8 characters")
        lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"
