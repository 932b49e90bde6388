"""Parse component specs of the form ``name[:arg][?key=value&...]`` (``isic2017:/data``, ``fixture?n=64``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from bench.errors import ConfigError


@dataclass(frozen=True)
class Spec:
    """A parsed spec: the registered name, its argument (a root folder, an smp model) and options."""

    name: str
    arg: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = self.name + (f":{self.arg}" if self.arg is not None else "")
        if self.options:
            text += "?" + "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return text


def parse_spec(text: str, option: str = "--data") -> Spec:
    """Split ``text`` into name, argument and options; bad forms name the option and the expected form."""
    raw = text.strip()
    if not raw:
        raise ConfigError(f"{option}: empty value; expected NAME[:ARG][?key=value&...]")
    query = ""
    if "?" in raw:
        raw, query = raw.split("?", 1)
    name, sep, arg = raw.partition(":")
    options: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        if "=" not in pair:
            raise ConfigError(f"{option}: option {pair!r} in {text!r} has no value; expected key=value")
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key in options:
            raise ConfigError(f"{option}: option {key!r} is given twice in {text!r}; give it once")
        options[key] = value
    if not name:
        raise ConfigError(f"{option}: {text!r} has no name; expected NAME[:ARG][?key=value&...]")
    return Spec(name=name, arg=arg if sep else None, options=options)


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """``"192x256"`` -> ``(192, 256)`` (height first, as the paper writes sizes)."""
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(f"{option}: {text!r} is not a size; expected HxW, e.g. 192x256") from None
    if h <= 0 or w <= 0:
        raise ConfigError(f"{option}: {text!r} must be positive, e.g. 192x256")
    return h, w


def format_size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
