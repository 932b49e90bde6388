"""The component registry: what plugins registered, looked up by kind and name (as timm's registry)."""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Any, Callable

from bench.errors import PluginError, UnknownComponentError

KINDS = ("generators", "segmenters", "losses", "schedules", "datasets", "loggers")
BUILTIN_DISTRIBUTION = "skinbench"
"""The distribution of the built-in plugins: their component names cannot be taken over by another plugin."""


class ReservedNameError(PluginError):
    """A plugin tried to register a name a built-in already has; the built-in keeps it."""


def singular(kind: str) -> str:
    """``losses`` -> ``loss``, ``segmenters`` -> ``segmenter``."""
    return kind[:-2] if kind.endswith("sses") else kind[:-1]


@dataclass(frozen=True)
class Component:
    """A registered factory with its metadata."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str = ""
    meta: Any = None
    """The kind's typed metadata (:mod:`bench.plugin.components`): ``SegmenterMeta``, ``ScheduleMeta``, ..."""
    reference: str | None = None
    plugin: str = "?"
    distribution: str | None = None
    variants: Callable[[], dict[str, list[str]]] | None = None
    """For parametrised names (``smp:ARCH:ENCODER``): the values each part of the argument can take."""

    @property
    def defaults(self) -> dict[str, Any]:
        """The metadata as a flat dict, each declared option by its default (for listings and ``bench describe``)."""
        from bench.plugin.options import declared

        if self.meta is None:
            return {}
        out = {k: v for k, v in vars(self.meta).items() if k != "options" and v != ()}
        out.update({key: option.default for key, option in declared(self.meta).items()})
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (no callables)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "defaults": self.defaults,
            "reference": self.reference,
            "plugin": self.plugin,
            "distribution": self.distribution,
        }


class Registry:
    """Components by kind; a name clash between plugins makes the name unusable and says who clashed."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Component]] = {k: {} for k in KINDS}
        self._clashes: dict[tuple[str, str], list[str]] = {}

    def add(self, component: Component) -> None:
        """Add a component; raise :class:`PluginError` naming both plugins when the name is taken."""
        if component.kind not in self._items:
            raise PluginError(f"unknown component kind {component.kind!r}; expected one of {', '.join(KINDS)}")
        if not component.name or any(c in component.name for c in ":?, "):
            raise PluginError(
                f"plugin {component.plugin!r} registered an invalid {singular(component.kind)} name "
                f"{component.name!r}: use letters, digits, '-', '_' and '.' only"
            )
        existing = self._items[component.kind].get(component.name)
        if existing is not None and existing.distribution == BUILTIN_DISTRIBUTION != component.distribution:
            raise ReservedNameError(
                f"{singular(component.kind)} name {component.name!r} belongs to the built-in plugin "
                f"{existing.plugin!r} ({BUILTIN_DISTRIBUTION}); plugin {component.plugin!r} (distribution "
                f"{component.distribution or 'unknown'}) cannot replace it, so its {component.name!r} was not "
                "registered: give it another name"
            )
        key = (component.kind, component.name)
        if existing is not None or key in self._clashes:
            owners = self._clashes.setdefault(key, [existing.plugin] if existing else [])
            owners.append(component.plugin)
            self._items[component.kind].pop(component.name, None)
            raise PluginError(
                f"{singular(component.kind)} name {component.name!r} is registered by more than one plugin: "
                f"{' and '.join(repr(o) for o in owners)}; uninstall one of them or set BENCH_LOAD_PLUGINS"
            )
        self._items[component.kind][component.name] = component

    def remove_plugin(self, plugin: str) -> None:
        """Forget every component ``plugin`` registered (used by ``bench.testing`` after a test)."""
        for items in self._items.values():
            for name in [n for n, c in items.items() if c.plugin == plugin]:
                del items[name]

    def clash_owners(self, kind: str, name: str) -> list[str]:
        """The plugins that registered the same ``name`` (empty when there is no clash)."""
        return list(self._clashes.get((self._kind(kind), name), []))

    def names(self, kind: str, pattern: str | None = None) -> list[str]:
        """Sorted names of one kind, optionally filtered by a shell-style wildcard pattern."""
        names = sorted(self._items[self._kind(kind)])
        if pattern:
            names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        return names

    def all(self, kind: str) -> list[Component]:
        return [self._items[self._kind(kind)][n] for n in self.names(kind)]

    def get(self, kind: str, name: str) -> Component:
        """The component called ``name``; unknown names get close matches and the full list."""
        kind = self._kind(kind)
        if (kind, name) in self._clashes:
            owners = self._clashes[(kind, name)]
            raise PluginError(
                f"{singular(kind)} {name!r} is registered by more than one plugin "
                f"({' and '.join(repr(o) for o in owners)}); it cannot be used until one is removed"
            )
        try:
            return self._items[kind][name]
        except KeyError:
            raise UnknownComponentError(unknown_message(singular(kind), name, self.names(kind))) from None

    def find(self, name: str) -> list[Component]:
        """Every component called ``name``, whatever its kind (for ``bench describe``)."""
        return [items[name] for items in self._items.values() if name in items]

    @staticmethod
    def _kind(kind: str) -> str:
        plural = kind if kind.endswith("s") else kind + "s"
        if plural not in KINDS:
            raise UnknownComponentError(unknown_message("component kind", kind, list(KINDS)))
        return plural


def unknown_message(what: str, name: str, valid: list[str]) -> str:
    """`unknown generator 'dcgn'; did you mean 'dcgan'? valid: ...` as one line."""
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {what} {name!r}{hint}; valid: {', '.join(valid) if valid else '(none installed)'}"
