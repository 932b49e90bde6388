"""Plugin loading: entry points of group ``bench`` (built-ins included), isolated faults, the registry."""

from __future__ import annotations

import importlib.metadata as md
import os
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import pluggy

from bench.plugin import hookspecs
from bench.plugin.components import meta_from
from bench.plugin.options import name_of
from bench.errors import BenchError, PluginError
from bench.plugin.catalog import BUILTIN_DISTRIBUTION, KINDS, Component, Registry, ReservedNameError, singular

GROUP = "bench"
ALLOW_ENV = "BENCH_LOAD_PLUGINS"


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin, for ``bench plugins`` and run records."""

    name: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "registered": self.registered,
            "errors": self.errors,
        }


class PluginHost:
    """Owns the pluggy manager, the plugins' load report and the component registry."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}

    def load_entry_points(self) -> None:
        """Import every allowed entry point of group ``bench`` and register it; faults are reported."""
        allow = _allow_list()
        builtins_first = sorted(md.entry_points(group=GROUP),
                                key=lambda e: (e.dist is None or e.dist.name != BUILTIN_DISTRIBUTION, e.name))
        for ep in builtins_first:
            dist = ep.dist.name if ep.dist is not None else None
            if allow is not None and ep.name not in allow and (dist or "") not in allow:
                continue
            version = ep.dist.version if ep.dist is not None else None
            taken = self.plugins.get(ep.name)
            if taken is not None and taken.distribution != dist:
                key = f"{ep.name} ({dist})"
                info = self.plugins.setdefault(key, PluginInfo(key, dist, version))
                self._fault(info, f"entry point name {ep.name!r} is already taken by distribution "
                                  f"{taken.distribution or 'unknown'}; this plugin was not loaded (give its entry "
                                  "point another name)")
                continue
            info = self.plugins.setdefault(ep.name, PluginInfo(ep.name, dist, version))
            try:
                module = ep.load()
            except BaseException as exc:  # a broken plugin (even one calling sys.exit) must not break the harness
                self._fault(info, f"import failed: {_describe(exc)}")
                continue
            self.add_plugin(module, ep.name, dist, version)

    def add_plugin(
        self, plugin: ModuleType | object, name: str, distribution: str | None = None, version: str | None = None
    ) -> PluginInfo:
        """Register one plugin object (a module or any object with hook implementations)."""
        info = self.plugins.setdefault(name, PluginInfo(name, distribution, version))
        try:
            self.pm.register(plugin, name=name)
        except BaseException as exc:
            self._fault(info, f"registration failed: {_describe(exc)}")
            return info
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        for kind in KINDS:
            self._call_register_hook(plugin, info, kind)
        return info

    def remove_plugin(self, name: str) -> None:
        """Unregister plugin ``name`` and everything it registered."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.registry.remove_plugin(name)
        self.plugins.pop(name, None)

    def add_commands(self, cli: Any) -> None:
        """Let each plugin add subcommands; a plugin whose hook raises is reported and skipped."""
        for impl in self.pm.hook.bench_register_commands.get_hookimpls():
            info = self.plugins[impl.plugin_name]
            try:
                impl.function(cli=cli)
            except BaseException as exc:
                self._fault(info, f"hook bench_register_commands raised: {_describe(exc)}")

    def provenance(self, kind: str, name: str) -> dict[str, str | None]:
        """Which plugin, distribution and version provide component ``name`` (or spec) of ``kind`` (for records)."""
        component = self.registry.get(kind, name_of(name))
        info = self.plugins.get(component.plugin)
        return {"name": name, "plugin": component.plugin, "distribution": component.distribution,
                "version": info.version if info else None}

    def errors(self) -> list[tuple[PluginInfo, str]]:
        return [(p, e) for p in self.plugins.values() for e in p.errors]

    def _call_register_hook(self, plugin: object, info: PluginInfo, kind: str) -> None:
        hook_name = f"bench_register_{kind}"
        impls = [i for i in getattr(self.pm.hook, hook_name).get_hookimpls() if i.plugin is plugin]
        for impl in impls:
            refused: list[str] = []  # each component is registered or refused on its own; the hook goes on
            try:
                impl.function(register=self._register_fn(info, kind, refused))
            except PluginError as exc:
                refused.append(str(exc))
            except BaseException as exc:  # SystemExit or KeyboardInterrupt from the plugin's own code included
                refused.append(f"hook {hook_name} raised: {_describe(exc)}")
            for message in refused:
                self._fault(info, message)

    def _register_fn(self, info: PluginInfo, kind: str, refused: list[str]) -> Callable[..., None]:
        """The ``register`` callback of one hook call: a component it cannot take is refused into ``refused``."""
        def register(
            name: str,
            factory: Callable[..., Any],
            *,
            description: str = "",
            meta: Any = None,
            reference: str | None = None,
            variants: Callable[[], dict[str, list[str]]] | None = None,
            defaults: dict[str, Any] | None = None,
        ) -> None:
            if not callable(factory):
                refused.append(f"plugin {info.name!r} registered {singular(kind)} {name!r} with a factory that "
                               f"is not callable ({type(factory).__name__})")
                return
            try:
                typed = meta_from(kind, meta, defaults)
            except (TypeError, ValueError, BenchError) as exc:
                refused.append(f"plugin {info.name!r} registered {singular(kind)} {name!r} with invalid "
                               f"metadata: {exc}")
                return
            component = Component(
                kind=kind,
                name=name,
                factory=factory,
                description=description,
                meta=typed,
                reference=reference,
                plugin=info.name,
                distribution=info.distribution,
                variants=variants,
            )
            try:
                self.registry.add(component)
            except ReservedNameError as exc:
                refused.append(str(exc))
                return
            except PluginError as exc:
                for owner in self.registry.clash_owners(kind, name):
                    other = self.plugins.get(owner)
                    if other is not None and other is not info:
                        other.errors.append(str(exc))
                        if name in other.registered.get(kind, []):
                            other.registered[kind].remove(name)
                refused.append(str(exc))
                return
            info.registered.setdefault(kind, []).append(name)

        return register

    def _fault(self, info: PluginInfo, message: str) -> None:
        info.errors.append(message)
        if self.strict:
            raise PluginError(
                f"plugin {info.name!r} (distribution {info.distribution or 'unknown'}): {message} "
                "(--strict-plugins makes plugin faults fatal)"
            )


def _allow_list() -> set[str] | None:
    raw = os.environ.get(ALLOW_ENV)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" ({os.path.basename(frame.filename)}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


_HOST: PluginHost | None = None


def get_host(strict: bool = False, reload: bool = False) -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None or reload or (strict and not _HOST.strict):
        host = PluginHost(strict=strict)
        host.load_entry_points()
        _HOST = host
    return _HOST
