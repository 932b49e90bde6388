"""Lines for ``bench list KIND [PATTERN]``, expanding parametrised names such as ``smp:ARCH:ENCODER``."""

from __future__ import annotations

import fnmatch
import itertools

from bench.plugin.catalog import Registry

MAX_COMBINATIONS = 300


def list_lines(registry: Registry, kind: str, pattern: str | None) -> list[str]:
    lines = []
    for component in registry.all(kind):
        label = f"({component.plugin})"
        if component.variants is None:
            if pattern is None or fnmatch.fnmatchcase(component.name, pattern):
                lines.append(f"{component.name:<16} {component.description}  {label}")
            continue
        axes = component.variants()
        template = component.name + ":" + ":".join(axes)
        if pattern is not None and not fnmatch.fnmatchcase(template, pattern) and ":" not in pattern:
            continue
        parts = (pattern or "").split(":")
        if pattern is None or parts[0] != component.name or all(p == "*" for p in parts[1:]):
            if pattern is None or fnmatch.fnmatchcase(component.name, parts[0]):
                lines.append(f"{template:<16} {component.description}  {label}")
                for axis, values in axes.items():
                    shown = ", ".join(values[:60]) + (f", ... ({len(values)} in all)" if len(values) > 60 else "")
                    lines.append(f"  {axis} ({len(values)}): {shown}")
            continue
        filters = parts[1:] + ["*"] * (len(axes) - len(parts) + 1)
        chosen = [[v for v in values if fnmatch.fnmatchcase(v, f)] for values, f in zip(axes.values(), filters)]
        combos = list(itertools.islice(itertools.product(*chosen), MAX_COMBINATIONS + 1))
        for combo in combos[:MAX_COMBINATIONS]:
            lines.append(f"{component.name}:{':'.join(combo)}")
        if len(combos) > MAX_COMBINATIONS:
            total = 1
            for values in chosen:
                total *= len(values)
            lines.append(f"... {total - MAX_COMBINATIONS} more; narrow the pattern")
    return lines
