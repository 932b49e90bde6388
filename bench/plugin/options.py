"""Component options: ``NAME?key=value&...`` for every kind, typed and checked against what the component declares.

A component declares its options in its metadata (``SegmenterMeta(..., options={"depth": 4})``,
``OptionsMeta({"gamma": Option(2.0, help="focusing")})``): a plain value is the default and gives the type, an
:class:`Option` adds help, choices or an explicit type. The harness checks what a user passes before any work
(an undeclared key is one line naming the declared ones), casts it, and passes it to the factory as keyword
arguments; a spec is written back in one canonical form (keys sorted, values as the type prints them), which is
what records and identities hold, so ``unet?depth=03`` and ``unet?depth=3`` are one experiment.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping
from urllib.parse import quote

from bench.data.spec import Spec, parse_spec
from bench.errors import ConfigError

TYPES: tuple[type, ...] = (bool, int, float, str)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
"""Numbers as a spec writes them: ASCII digits, no ``_`` separators, no ``inf``/``nan``."""


@dataclass(frozen=True)
class Option:
    """One declared option: its default, type (from the default when not given), help and allowed values."""

    default: Any = None
    type: type | None = None
    help: str = ""
    choices: tuple[Any, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        kind = self.type or (type(self.default) if self.default is not None else None)
        if kind not in TYPES:
            raise TypeError(f"Option: type must be one of bool, int, float, str (or given by the default), got "
                            f"{getattr(kind, '__name__', kind)!r}")
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "choices", tuple(self.choices))

    def describe(self) -> str:
        """``int, default 4, one of 2/3/4: depth of the encoder`` (for ``bench describe``)."""
        assert self.type is not None
        text = f"{self.type.__name__}, " + (f"default {format_value(self.default)}" if self.default is not None
                                            else "no default")
        if self.choices:
            text += ", one of " + "/".join(format_value(c) for c in self.choices)
        return text + (f": {self.help}" if self.help else "")


def declared(meta: Any) -> dict[str, Option]:
    """The options a component's metadata declares, each as an :class:`Option` (plain defaults wrapped)."""
    raw: Mapping[str, Any] = getattr(meta, "options", None) or {}
    out = {}
    for key, value in raw.items():
        try:
            out[key] = value if isinstance(value, Option) else Option(value)
        except TypeError as exc:
            raise TypeError(f"option {key!r}: {exc}") from None
    return out


def format_value(value: Any) -> str:
    """A typed value as a spec writes it: ``true``/``false``, ``3``, ``0.25``, ``1e-05``, text as is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def cast(key: str, value: Any, option: Option, where: str) -> Any:
    """``value`` (text from a spec, or already typed from a config file) as the option's type, or an error naming
    ``where``, the key and the expected form."""
    kind = option.type
    wrong = f"{where}: option {key}={value!r} is not {'an' if kind is int else 'a'} {getattr(kind, '__name__', kind)}"
    out: Any
    if kind is bool:
        text = str(value).strip().lower()
        if isinstance(value, bool):
            out = value
        elif text in _TRUE or text in _FALSE:
            out = text in _TRUE
        else:
            raise ConfigError(f"{wrong}; expected true or false")
    elif kind is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()) or \
                (isinstance(value, str) and not _INT.fullmatch(value.strip())):
            raise ConfigError(f"{wrong}; expected a whole number, e.g. {key}=3")
        out = int(value)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) or \
            isinstance(value, str) and _FLOAT.fullmatch(value.strip()) is not None
        out = float(value) if ok else math.nan
        if not math.isfinite(out):
            raise ConfigError(f"{wrong}; expected a finite number, e.g. {key}=0.5")
        out += 0.0  # -0.0 is 0.0: one value, one spelling
    else:
        out = str(value)
    if option.choices and out not in option.choices:
        raise ConfigError(f"{where}: option {key}={format_value(out)} is not allowed; expected one of "
                          f"{', '.join(format_value(c) for c in option.choices)}")
    return out


_KEEP_DEFAULTS = contextvars.ContextVar("keep_defaults", default=False)


@contextlib.contextmanager
def keeping_defaults() -> Iterator[None]:
    """Within it, options equal to their declared default still reach the factory: how ``bench.testing``'s
    checks find a factory whose own default is not the declared one (the harness relies on their equality)."""
    token = _KEEP_DEFAULTS.set(True)
    try:
        yield
    finally:
        _KEEP_DEFAULTS.reset(token)


def resolve(kind: str, name: str, meta: Any, given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The options ``given`` for component ``name`` of ``kind`` (singular), typed, those equal to their declared
    default left out (the factory's own default is the same: ``bench.testing``'s checks hold it to that), so
    ``unet?depth=4`` is ``unet``; an undeclared key is one line naming the declared ones."""
    options = declared(meta)
    out = {}
    for key, value in sorted(given.items()):
        if key not in options:
            known = ", ".join(f"{k} ({o.type.__name__ if o.type else '?'})" for k, o in sorted(options.items()))
            raise ConfigError(f"{where}: {kind} {name!r} has no option {key!r}; "
                              + (f"it declares: {known}" if known else "it declares no options"))
        typed = cast(key, value, options[key], where)
        if _KEEP_DEFAULTS.get() or options[key].default is None or typed != options[key].default or \
                type(typed) is not type(options[key].default):
            out[key] = typed
    return out


def canonical(spec: Spec, typed: Mapping[str, Any]) -> str:
    """``spec`` written once and for all: name, argument, then the typed options sorted by key."""
    text = spec.name + (f":{spec.arg}" if spec.arg is not None else "")
    if typed:
        text += "?" + "&".join(f"{k}={quote(format_value(v), safe='/:.,-_+x')}" for k, v in sorted(typed.items()))
    return text


TAKES_ARGUMENT = ("datasets",)
"""Kinds whose factory gets ``NAME:ARG``'s argument (a root folder); for the others only parametrised names
(``smp:ARCH:ENCODER``, registered with ``variants``) take one."""


def name_of(text: str) -> str:
    """The registered name a ``NAME[:ARG][?k=v]`` spec refers to."""
    return parse_spec(text).name


@dataclass(frozen=True)
class Resolved:
    """A spec checked against its component: the parsed spec, the typed options and the canonical text."""

    spec: Spec
    options: dict[str, Any]
    text: str


def resolve_spec(host: Any, kind: str, text: str, where: str) -> Resolved:
    """Parse ``text`` (``NAME[:ARG][?k=v]``) for a component of ``kind`` (plural) and check its options."""
    from bench.plugin.catalog import singular

    spec = parse_spec(text, where)
    component = host.registry.get(kind, spec.name)
    if spec.arg is not None and kind not in TAKES_ARGUMENT and component.variants is None:
        raise ConfigError(f"{where} {text}: {singular(kind)} {spec.name!r} takes no argument (':{spec.arg}'); "
                          f"drop it, or pass options as {spec.name}?key=value")
    typed = resolve(singular(kind), spec.name, component.meta, spec.options, f"{where} {text}")
    return Resolved(spec, typed, canonical(spec, typed))
