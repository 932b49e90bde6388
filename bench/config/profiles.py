"""Profile fields: the one table of protocol settings, their value per profile, help, type and validation.

Everything that lists settings derives from :data:`FIELDS`: the ``bench run`` and ``bench gan`` options,
the sweep/grid keys and their casts, the resolved :class:`bench.config.run.RunConfig`, the record and the
leaderboard's labels. Adding a setting is one entry here (and reading it where it takes effect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from bench.data.spec import format_size, parse_size
from bench.errors import ConfigError

PROFILE_NAMES = ("paper", "quick")


def _at_least(low: float) -> Callable[[Any], str | None]:
    if low == 0:
        return lambda v: None if v >= 0 else f"must be 0 or more, got {v}"
    return lambda v: None if v >= low else f"must be at least {low:g}, got {v}"


def _positive(v: Any) -> str | None:
    return None if v > 0 else f"must be greater than 0, got {v}"


def _open_unit(v: Any) -> str | None:
    return None if 0.0 < v < 1.0 else f"must lie strictly between 0 and 1, got {v}"


def _size(v: Any) -> str | None:
    parse_size(v, "size")
    return None


CURVE_SPLIT_FORM = "expected scored or holdout:F with 0 < F <= 0.5 (e.g. holdout:0.2)"
"""The form ``--curve-split`` takes, for every error about it."""


def parse_curve_split(text: str) -> float | None:
    """``scored`` -> ``None`` (the curve is on the scored split); ``holdout:F`` -> ``F``, the fraction of the
    training split held out for the curve. A ConfigError naming ``--curve-split`` and the form otherwise."""
    kind, sep, value = str(text).strip().partition(":")
    if kind.lower() == "scored" and not sep:
        return None
    fraction = math.nan
    if kind.lower() == "holdout" and sep:
        try:
            fraction = float(value)
        except ValueError:
            pass
    if not 0.0 < fraction <= 0.5:  # NaN fails too
        raise ConfigError(f"--curve-split: {CURVE_SPLIT_FORM}, got {text!r}")
    return fraction


def format_curve_split(fraction: float | None) -> str:
    """The one spelling of a curve split (``holdout:0.2`` for ``holdout:.20``): one run, one folder."""
    return "scored" if fraction is None else f"holdout:{fraction!r}"


def _curve_split(v: Any) -> str | None:
    parse_curve_split(v)
    return None


@dataclass(frozen=True)
class Field:
    """One protocol setting: its type, its value in each profile, its option's help, and its check.

    ``gan``: the setting shapes a trained generator (a ``bench gan`` option, part of the generator's cache key).
    ``axis``: where the leaderboard names it when two otherwise equal runs differ in it (row or column).
    ``identity``: whether it changes what is trained or scored (the eval batch size does not).
    """

    name: str
    type: type
    values: dict[str, Any]
    help: str
    check: Callable[[Any], str | None] | None = None
    gan: bool = False
    axis: str = "row"
    identity: bool = True
    metavar: str | None = None

    @property
    def option(self) -> str:
        """The command-line option: ``--gan-batch-size`` for ``gan_batch_size``."""
        return "--" + self.name.replace("_", "-")

    def cast(self, value: Any, where: str | None = None) -> Any:
        """``value`` (from the command line, a grid file or ``--set``) as this field's type, checked."""
        where = where or self.option
        if value is None:
            return None
        if self.type is float and isinstance(value, bool) or self.type is int and isinstance(value, (bool, float)):
            raise ConfigError(f"{where}: {value!r} is not a valid {self.type.__name__}")
        try:
            out = self.type(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {value!r} is not a valid {self.type.__name__}") from None
        if isinstance(out, float) and not math.isfinite(out):
            raise ConfigError(f"{where}: {value!r} is not a finite number")
        if self.check is not None:
            try:
                problem = self.check(out)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {str(exc).split(': ', 1)[-1]}") from None
            if problem:
                raise ConfigError(f"{where}: {problem}")
        return out


def _f(name: str, typ: type, paper: Any, quick: Any, help: str, **kw: Any) -> Field:
    return Field(name, typ, {"paper": paper, "quick": quick}, help, **kw)


# The paper's numbers (Section 5) and the quick profile (48x64 inputs, quarter-width networks, a few epochs:
# `bench run --gen dcgan --seg unet --profile quick` takes about a minute on two CPU cores). A size or
# channel set of None means "the segmenter's own". The paper gives no GAN epoch count or GAN batch size:
# 200 epochs at batch 64 (about 5900 DCGAN updates on 1882 images) is our documented choice.
FIELDS: tuple[Field, ...] = (
    _f("data", str, "fixture", "fixture", "Training dataset: fixture[?n=..], isic2017:ROOT, isic2018:ROOT, "
       "ham10000:ROOT, folder:ROOT (bench list datasets).",
       metavar="SPEC"),
    _f("size", str, None, "48x64", "Segmenter input size HxW (default: the segmenter's own).", check=_size,
       metavar="HxW"),
    _f("channels", str, None, None, "Channel set: rgb, rgb-hsv-l, rgb-hsv-lab (default: the segmenter's own)."),
    _f("batch_size", int, 16, 16, "Segmenter training batch size.", check=_at_least(1)),
    _f("lr", float, 3e-4, 3e-4, "Segmenter learning rate (Adam).", check=_positive),
    _f("epochs", int, 400, 12, "Epochs of the real-only and mixed schedules.", check=_at_least(0)),
    _f("synthetic_epochs", int, 400, 4, "Two-phase: epochs on synthetic data.", check=_at_least(0), axis="column"),
    _f("finetune_epochs", int, 100, 10, "Two-phase: epochs on real data after.", check=_at_least(0),
       axis="column"),
    _f("gan_epochs", int, 200, 40, "Epochs to train each generator.", check=_at_least(0), gan=True,
       axis="column"),
    _f("gan_size", str, "192x256", "48x64", "Generator output size HxW.", check=_size, gan=True, axis="column",
       metavar="HxW"),
    _f("gan_batch_size", int, 64, 16, "Batch size of generator training.", check=_at_least(1), gan=True,
       axis="column"),
    _f("gan_lr", float, 2e-4, 2e-4, "Learning rate of generator training.", check=_positive, gan=True,
       axis="column"),
    _f("sample_steps", int, 50, 10, "Sampling steps of iterative generators (ddpm: DDIM steps); GANs ignore it.",
       check=_at_least(1), gan=True, axis="column"),
    _f("width", float, 1.0, 0.25, "Channel-width multiplier of the networks (1 = paper).", check=_positive,
       gan=True),
    _f("threshold", float, 0.5, 0.5, "Probability threshold of the prediction.", check=_open_unit),
    _f("eval_batch_size", int, 16, 32, "Batch size of prediction (does not change scores).", check=_at_least(1),
       identity=False),
    _f("curve_every", int, 5, 1, "Score the training curve (curve_jaccard, Fig. 5) every N epochs of a phase and at "
       "its last epoch (does not change scores).", check=_at_least(1), identity=False, metavar="N"),
    _f("curve_split", str, "scored", "scored", "What the training curve (Fig. 5) is computed on: scored (the "
       "scored split: for reading, never for choosing an epoch) or holdout:F (a fraction F <= 0.5 of the training "
       "pairs, chosen by id, removed from all training).", check=_curve_split, metavar="SPLIT"),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
GAN_FIELDS: tuple[Field, ...] = tuple(f for f in FIELDS if f.gan)
PROFILES: dict[str, dict[str, Any]] = {p: {f.name: f.values[p] for f in FIELDS} for p in PROFILE_NAMES}
"""``{profile: {field: value}}``, derived from :data:`FIELDS` (for reading; change the table instead)."""


def field(name: str, where: str) -> Field:
    """The field called ``name`` (dashes allowed); an error naming ``where`` and the known fields otherwise."""
    try:
        return BY_NAME[name.replace("-", "_")]
    except KeyError:
        raise ConfigError(f"{where}: unknown setting {name!r}; known: {', '.join(BY_NAME)}") from None


def resolve(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The profile's values with ``overrides`` (``None`` means "not given") applied, cast and checked."""
    if name not in PROFILES:
        raise ConfigError(f"--profile: unknown profile {name!r}; expected one of {', '.join(PROFILES)}")
    values = dict(PROFILES[name])
    for key, value in overrides.items():
        if value is not None:
            f = field(key, "--set")
            values[f.name] = f.cast(value)
    for key in ("size", "gan_size"):
        if values[key] is not None:
            values[key] = format_size(parse_size(values[key], BY_NAME[key].option))
    values["curve_split"] = format_curve_split(parse_curve_split(values["curve_split"]))
    values["profile"] = name
    return values
