"""Text for ``bench describe``: metadata, and for networks their layers and trainable parameters."""

from __future__ import annotations

import inspect

import torch

from bench.data import channels
from bench.data.spec import parse_size
from bench.plugin.catalog import Component, singular
from bench.plugin.options import declared


def describe_component(component: Component, arg: str | None = None) -> str:
    lines = [f"{component.name} ({singular(component.kind)}, plugin {component.plugin})"]
    if component.description:
        lines.append(f"  {component.description}")
    if component.reference:
        lines.append(f"  reference: {component.reference}")
    options = declared(component.meta)
    for key, value in component.defaults.items():
        if key not in options:
            lines.append(f"  default {key}: {value}")
    for key, option in options.items():
        lines.append(f"  option {key}: {option.describe()}")
    if options:
        lines.append("  options: NAME[:ARG]?key=value&... (bench run, bench sweep grids, --config files)")
    if component.variants is not None and arg is None:
        lines.append(f"  parametrised: {component.name}:" + ":".join(component.variants()))
        for axis, values in component.variants().items():
            shown = ", ".join(values[:40]) + (f", ... ({len(values)} in all)" if len(values) > 40 else "")
            lines.append(f"  {axis} ({len(values)}): {shown}")
    elif component.kind == "segmenters":
        cset = component.meta.channels
        extra = {"spec": arg} if arg is not None else {}
        model = component.factory(channels.channel_count(cset), **extra)
        lines += _network(model)
    elif component.kind == "generators":
        gen = component.factory(size=parse_size(component.meta.size))
        lines.append(gen.describe())
    else:
        doc = inspect.getdoc(component.factory)
        if doc:
            lines.append("  " + doc.splitlines()[0])
    return "\n".join(lines)


def _network(model: torch.nn.Module) -> list[str]:
    describe = getattr(model, "describe", None)
    if callable(describe):
        return [str(describe())]
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    layers = [m for m in model.modules() if not list(m.children())]
    return [f"  trainable parameters: {params:,}", f"  leaf layers: {len(layers)}", str(model)]
