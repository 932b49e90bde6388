"""Contract checks: build one registered component the way the harness does and check everything a run relies on.

A plugin can return logits of the wrong shape, dtype or device, ignore its seed, leave a parameter without a
gradient, sample outside [-1, 1] or from an unseeded source, and only a run (often a long one, on a GPU) would
find out. :func:`check_segmenter`, :func:`check_generator`, :func:`check_loss` and :func:`check_schedule` find
it in a second on a CPU and raise :class:`ContractError`: one line naming the component, its plugin and what
broke. Each returns a small dict of what it checked. Plugin authors call them through ``bench.testing``.

This module is in the plugin layer: what the checks need from the layers above (the captured-step check, the
harness's generator builder and its real pairs, the quick profile's run configuration) is handed in by
``bench.testing``, which may import any layer.
"""

from __future__ import annotations

import dataclasses
import io
import random
import re
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from bench.data import channels as channel_sets
from bench.data.spec import format_size, parse_size, parse_spec
from bench.errors import BenchError
from bench.plugin import build, options
from bench.plugin.catalog import Component, singular
from bench.plugin.components import (EPOCH_FIELDS, Generator, GeneratorMeta, Phase, ScheduleMeta,
                                     SegmenterMeta)

GAN_LR = 2e-4
"""The learning rate generators are built with (both profiles' ``gan_lr``)."""
SAMPLE_STEPS = 2
"""Sampling steps given to an iterative generator (a diffusion model): enough to exercise its sampler."""
FIT_PAIRS, FIT_BATCH = 8, 4
"""Real pairs a generator's ``fit`` is given, and its batch size: two batches an epoch, as cheap as can be."""


class ContractError(AssertionError):
    """A component breaks its contract. The message is one line: the component, its plugin, what broke.

    An ``AssertionError``, so that pytest shows it as a failed check rather than an error in the test."""


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line (an exception's message may span several, with terminal colour codes), at most
    ``limit`` characters."""
    flat = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(text)).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def who(component: Component, text: str | None = None) -> str:
    """``segmenter 'unet' from plugin 'unet'``: how every message of the checks starts."""
    return f"{singular(component.kind)} {(text or component.name)!r} from plugin {component.plugin!r}"


NAMED = re.compile(r"^(segmenter|generator|loss|schedule|dataset) '[^']*' from plugin '[^']*':? ")
"""How the harness's errors name a component (``generator 'x' from plugin 'p' failed to build: ...``)."""


def failure(name: str, context: str, exc: BenchError) -> ContractError:
    """``exc``, a harness error that names the component itself, as a ContractError; with a ``context`` (the
    options it was built with), the message is ``name: context`` and the harness's own naming is dropped."""
    text = one_line(exc)
    return ContractError(f"{name}: {context}{NAMED.sub('', text)}" if context else text)


def lookup(host: Any, kind: str, text: str, option: str) -> Component:
    """The registered component ``text`` (a name or ``NAME[:ARG][?k=v]``) names; a ContractError otherwise."""
    try:
        return host.registry.get(kind, parse_spec(text, option).name)
    except BenchError as exc:
        raise ContractError(one_line(exc)) from None


def with_defaults(host: Any, kind: str, text: str, option: str) -> tuple[str, str]:
    """``text`` with every option its component declares given explicitly (the declared default, unless ``text``
    gives the option): what a user typing every default would pass, in canonical form; and those defaults as
    ``key=value`` text for messages (empty when the component declares none with a default). The factory must
    build the same component either way, or ``bench describe`` documents defaults the runs do not use."""
    try:
        resolved = options.resolve_spec(host, kind, text, option)
    except BenchError as exc:
        raise ContractError(one_line(exc)) from None
    declared = options.declared(host.registry.get(kind, resolved.spec.name).meta)
    defaults = {k: o.default for k, o in declared.items() if o.default is not None and k not in resolved.options}
    explicit = options.canonical(resolved.spec, {**defaults, **resolved.options})
    return explicit, "&".join(f"{k}={options.format_value(v)}" for k, v in sorted(defaults.items()))


def defaults_differ(name: str, given: str, what: str) -> ContractError:
    """The error for a factory whose own defaults are not the declared ones."""
    return ContractError(f"{name}: built with its declared defaults given ({given}) {what} than built without them; "
                         "keep the factory's defaults equal to the declared ones (bench describe shows those)")


@contextmanager
def isolated_rng(device: torch.device) -> Iterator[None]:
    """Run a block that seeds the global generators (torch, ``random``, NumPy) and give the caller's test
    its own random state back afterwards, as if the check had never drawn a number."""
    py, npy = random.getstate(), np.random.get_state()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)


def first_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> str | None:
    """The name of the first tensor that differs between two state dicts of one model (``None``: identical);
    entries that are not tensors (a module's extra state) are not compared."""
    for key, value in a.items():
        if not torch.is_tensor(value):
            continue
        other = b.get(key)
        if not torch.is_tensor(other) or other.shape != value.shape or not torch.equal(value.cpu(), other.cpu()):
            return key
    return None


def same(a: torch.Tensor, b: torch.Tensor, device: torch.device) -> bool:
    """Equal, bit for bit on the CPU; within rounding elsewhere (a GPU's kernels may reorder sums)."""
    if device.type == "cpu":
        return torch.equal(a, b)
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-5)


# -- segmenters -----------------------------------------------------------------------------------------------


def segmenter_meta(host: Any, component: Component, name: str) -> SegmenterMeta:
    """The component's SegmenterMeta, checked: its size parses, its channel set is known, its default loss is a
    registered loss (registration checks the first two; nothing checks the loss until a run asks for it)."""
    meta = component.meta
    if not isinstance(meta, SegmenterMeta):
        raise ContractError(f"{name}: registered with {type(meta).__name__} metadata; expected "
                            "SegmenterMeta(size=, channels=, loss=)")
    try:
        parse_size(meta.size, "size")
        channel_sets.channel_count(meta.channels)
    except BenchError as exc:
        raise ContractError(f"{name}: its SegmenterMeta is invalid ({one_line(exc)})") from None
    if meta.loss not in host.registry.names("losses"):
        raise ContractError(f"{name}: its default loss {meta.loss!r} (SegmenterMeta.loss) is not a registered loss; "
                            f"registered: {', '.join(host.registry.names('losses')) or 'none'}")
    return meta


def seeded_segmenter(host: Any, spec: str, channel_set: str, width: float, seed: int, name: str,
                     context: str = "") -> torch.nn.Module:
    """The segmenter built as a run builds it: every global generator seeded with ``seed`` first. ``context``
    prefixes a failure to build (which options were given)."""
    build.seed_everything(seed)
    try:
        model = build.build_segmenter(host, spec, channel_set, width)
    except BenchError as exc:
        raise failure(name, context, exc) from None
    if not isinstance(model, torch.nn.Module):
        raise ContractError(f"{name}: its factory returned {type(model).__name__}, not a torch.nn.Module")
    return model


def check_seeding(models: tuple[torch.nn.Module, ...], name: str) -> int:
    """Two builds after one seed have identical parameters and buffers; after another seed, every trainable
    parameter that is not one constant (ones, zeros: a constant initialisation) is different. A run's seed must
    decide the initialisation, or two seeds repeat one experiment. ``models``: the builds after seeds 0, 0 and
    1. Returns the number of parameters."""
    a, b, c = (dict(m.state_dict()) for m in models)
    differs = first_difference(a, b)
    if differs is not None:
        raise ContractError(f"{name}: two builds after seed 0 differ in {differs!r}; the initialisation must "
                            "draw from the seeded global generators (not its own torch.Generator, random.Random "
                            "or os entropy)")
    params = dict(models[0].named_parameters())
    drawn = [key for key, p in params.items() if p.requires_grad and key in c and p.numel() > 1
             and bool((p != p.flatten()[0]).any())]
    for key in drawn:
        if torch.equal(params[key].detach(), c[key]):
            raise ContractError(f"{name}: ignores the seed: parameter {key!r} is the same after seeds 0 and 1 "
                                "(its own torch.Generator or a fixed seed?); the run's seed must decide the "
                                "initialisation")
    if params and not drawn:
        raise ContractError(f"{name}: ignores the seed: every parameter is one constant after seeds 0 and 1; the "
                            "run's seed must decide the initialisation (draw the weights from the seeded generators)")
    return sum(p.numel() for p in params.values())


def check_logits(out: Any, x: torch.Tensor, name: str, mode: str, dtype: torch.dtype | None = torch.float32) -> None:
    """``out`` is what a segmenter must return for ``x`` in ``mode``: a floating tensor ``(B, 1, H, W)`` on
    ``x``'s device (of ``dtype`` unless ``None``), every value finite."""
    expected = (x.shape[0], 1, *x.shape[-2:])
    given = f"a {tuple(x.shape)} {str(x.dtype).replace('torch.', '')} batch ({mode})"
    if not torch.is_tensor(out):
        raise ContractError(f"{name}: returned {type(out).__name__} for {given}; expected a tensor of logits "
                            f"{expected}")
    if tuple(out.shape) != expected:
        raise ContractError(f"{name}: returned shape {tuple(out.shape)} for {given}; expected logits {expected}")
    if not out.is_floating_point() or (dtype is not None and out.dtype != dtype):
        want = str(dtype).replace("torch.", "") if dtype is not None else "a floating dtype"
        raise ContractError(f"{name}: returned {str(out.dtype).replace('torch.', '')} logits for {given}; "
                            f"expected {want}")
    if out.device != x.device:
        raise ContractError(f"{name}: returned logits on {out.device} for {given} on {x.device}; expected them "
                            "on the input's device")
    bad = int((~torch.isfinite(out.detach())).sum())
    if bad:
        raise ContractError(f"{name}: returned {bad} non-finite logits for {given}")


def forward(model: torch.nn.Module, x: torch.Tensor, name: str, mode: str) -> Any:
    """``model(x)``; an exception becomes a ContractError saying on what input and in which mode."""
    try:
        return model(x)
    except Exception as exc:
        raise ContractError(f"{name}: fails on a {tuple(x.shape)} batch ({mode}): "
                            f"{type(exc).__name__}: {one_line(exc)}") from None


def check_gradients(model: torch.nn.Module, out: torch.Tensor, name: str) -> None:
    """Backpropagating a loss of the logits reaches every parameter that requires a gradient, with finite
    values. A parameter left without one is reported: DistributedDataParallel (``--nproc``) fails on it."""
    target = (torch.arange(out.numel(), device=out.device).reshape(out.shape) % 3 == 0).float()
    F.binary_cross_entropy_with_logits(out.float(), target).backward()
    for key, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.grad is None:
            raise ContractError(f"{name}: parameter {key!r} gets no gradient from the logits; an unused parameter "
                                "makes DistributedDataParallel (--nproc) fail (remove it, or requires_grad_(False))")
        if not torch.isfinite(p.grad).all():
            raise ContractError(f"{name}: parameter {key!r} gets a non-finite gradient")


def harness_shape_check(host: Any, model: torch.nn.Module, spec: str, channel_set: str, size: tuple[int, int],
                        why: str) -> None:
    """The check a run makes before any data work (``build.check_segmenter``: one ``(1, C, H, W)`` batch at the
    run's size), as a ContractError saying ``why`` that size."""
    try:
        build.check_segmenter(host, model, spec, channel_set, size)
    except BenchError as exc:
        raise ContractError(f"{one_line(exc)} ({why})") from None


def check_modes(models: tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module], x: torch.Tensor, name: str,
                given: str) -> None:
    """On batch ``x``, with ``models`` the builds after seed 0 (twice, then with the declared defaults given):
    logits in eval mode, the same for all three; floating logits under bfloat16 autocast (how a run trains on a
    GPU); logits in train mode and their gradients."""
    model, twin, explicit = models
    for m in models:
        m.to(x.device).eval()
    with torch.no_grad():
        out = forward(model, x, name, "eval mode")
        check_logits(out, x, name, "eval mode")
        if not same(out, forward(twin, x, name, "eval mode"), x.device):
            raise ContractError(f"{name}: two builds after seed 0 give different logits in eval mode for one batch "
                                "(dropout or noise left on in eval mode?)")
        if explicit is not twin and not same(out, forward(explicit, x, name, "eval mode"), x.device):
            raise defaults_differ(name, given, "it gives other logits in eval mode")
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16):
            check_logits(forward(model, x, name, "bfloat16 autocast"), x, name, "bfloat16 autocast", None)
    model.train()
    out = forward(model, x, name, "train mode")
    check_logits(out, x, name, "train mode")
    check_gradients(model, out, name)


def check_segmenter(host: Any, spec: str, *, size: tuple[int, int], own_size: bool, channels: str | None = None,
                    device: str = "cpu", width: float = 0.25,
                    capture: Callable[[str, tuple[int, int]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Segmenter ``spec`` keeps its contract at ``size`` on ``device``: metadata, seeding, the same model with its
    declared defaults given, logits in eval, train and bf16 autocast, gradients; a run's pre-check at its own
    ``SegmenterMeta.size`` too when ``own_size``; then ``capture(channel_set, size)`` (the captured-step check)
    unless ``None``. Returns what was checked; raises :class:`ContractError`."""
    component = lookup(host, "segmenters", spec, "--seg")
    name = who(component, spec.strip())
    meta = segmenter_meta(host, component, name)
    explicit, given = with_defaults(host, "segmenters", spec, "--seg")
    channel_set = channels or meta.channels
    try:
        count = channel_sets.channel_count(channel_set)
    except BenchError as exc:
        raise ContractError(f"{name}: channels={channel_set!r}: {one_line(exc)}") from None
    dev = torch.device(device)
    with isolated_rng(dev):
        models = tuple(seeded_segmenter(host, spec, channel_set, width, seed, name) for seed in (0, 0, 1))
        n_params = check_seeding(models, name)
        with_given = models[1]
        if given:
            with options.keeping_defaults():
                with_given = seeded_segmenter(host, explicit, channel_set, width, 0, name,
                                              f"built with its declared defaults given ({given}): ")
            differs = first_difference(dict(models[0].state_dict()), dict(with_given.state_dict()))
            if differs is not None:
                raise defaults_differ(name, given, f"it has another {differs!r}")
        x = torch.randn(2, count, *size, generator=torch.Generator().manual_seed(0)).to(dev)
        check_modes((models[0], models[1], with_given), x, name, given)
        if own_size and parse_size(meta.size, "size") != tuple(size):
            harness_shape_check(host, models[2], spec, channel_set, parse_size(meta.size, "size"),
                                "its SegmenterMeta.size, the paper profile's size")
        captured = None
        if capture is not None:
            try:
                captured = capture(channel_set, size)
            except Exception as exc:
                raise ContractError(f"{name}: the captured-step check (bench_capture_check, --cuda-graph) failed: "
                                    f"{type(exc).__name__}: {one_line(exc, limit=1000)}") from None
    return {"segmenter": spec.strip(), "plugin": component.plugin, "size": format_size(size),
            "own_size": meta.size if own_size else None, "channels": channel_set, "device": str(dev),
            "defaults_given": given or None, "parameters": n_params, "capture": captured}


# -- generators ---------------------------------------------------------------------------------------------------


GeneratorBuilder = Callable[[Component, dict[str, Any], int], Any]
"""``bench.gan.cache.build_generator``: ``(component, {"size", "width", "lr"[, "sample_steps"]}, seed)``."""


def seeded_generator(builder: GeneratorBuilder, component: Component, config: dict[str, Any], seed: int,
                     global_seed: int, name: str, context: str = "") -> Generator:
    """The generator built as the harness builds it (``factory(size=, width=, lr=, seed=, **options)``), the
    global generators seeded with ``global_seed`` first, as a run seeds them. ``context`` prefixes a failure to
    build (which options were given)."""
    build.seed_everything(global_seed)
    try:
        gen = builder(component, config, seed)
    except BenchError as exc:
        raise failure(name, context, exc) from None
    if not isinstance(gen, Generator):
        raise ContractError(f"{name}: its factory returned {type(gen).__name__}, not a bench.api.Generator")
    if not isinstance(gen.cacheable, bool):
        raise ContractError(f"{name}: cacheable is {gen.cacheable!r}; expected True or False")
    return gen


def tensors_of(gen: Generator, name: str) -> dict[str, torch.Tensor]:
    """``gen.state_dict()`` as the cache stores and loads it (``torch.load(weights_only=True)``), on the CPU."""
    buffer = io.BytesIO()
    try:
        torch.save(gen.state_dict(), buffer)
        buffer.seek(0)
        state = torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception as exc:
        refused = re.search(r"WeightsUnpickler error: (.*?\.)(\s|$)", str(exc))  # the line that says what
        raise ContractError(f"{name}: state_dict() does not load with weights_only=True, as the generator cache "
                            f"loads it ({refused.group(1) if refused else one_line(exc)}); hold tensors only") from None
    if not isinstance(state, dict):
        raise ContractError(f"{name}: state_dict() returned {type(state).__name__}; expected a dict of tensors")
    return state


def flat_tensors(state: dict[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
    """The tensors of a (possibly nested) state dict, by dotted key, to compare two of them."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if torch.is_tensor(value):
            out[prefix + str(key)] = value
        elif isinstance(value, dict):
            out.update(flat_tensors(value, f"{prefix}{key}."))
    return out


def moved(gen: Generator, device: torch.device, name: str) -> Generator:
    """``gen.to(device)``, which must return the generator (the harness uses what it returns)."""
    out = gen.to(device)
    if not isinstance(out, Generator):
        raise ContractError(f"{name}: to(device) returned {type(out).__name__}; expected the generator (return self)")
    return out


def fitted(gen: Generator, real: torch.Tensor, epochs: int, device: torch.device, name: str) -> dict[str, float]:
    """``gen.fit`` on the real pairs with a seeded ``rng``, as the harness fits; what it returns must be a dict
    of finite numbers (the record keeps them as the generator's final losses)."""
    try:
        stats = gen.fit(real, epochs=epochs, batch_size=FIT_BATCH, rng=torch.Generator(device=device).manual_seed(7))
    except Exception as exc:
        raise ContractError(f"{name}: fit() fails on {tuple(real.shape)} real pairs in [-1, 1] "
                            f"({type(exc).__name__}: {one_line(exc)})") from None
    if not isinstance(stats, dict):
        raise ContractError(f"{name}: fit() returned {type(stats).__name__}; expected a dict of the last epoch's "
                            "mean losses (float values)")
    for key, value in stats.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ContractError(f"{name}: fit() returned {type(value).__name__} for {key!r}; expected a float "
                                "(read tensors once per epoch with .item())")
        if not np.isfinite(value):
            raise ContractError(f"{name}: fit() returned {key!r} = {value}; expected a finite value")
    return {str(k): float(v) for k, v in stats.items()}


UNNAMED = "generator '?': "
"""How ``build.check_samples`` starts its message when given ``'?'`` as the name (the checks name it their way)."""


def sampled(gen: Generator, n: int, seed: int, size: tuple[int, int], device: torch.device, name: str
            ) -> torch.Tensor:
    """``gen.sample(n, rng=...)`` with ``rng`` seeded ``seed`` on ``device``: on ``device``, checked as every call
    of a run is (``build.check_samples``: ``(n, 4, H, W)``, finite, in [-1, 1]), a floating tensor at ``size``."""
    try:
        out = gen.sample(n, rng=torch.Generator(device=device).manual_seed(seed))
    except Exception as exc:
        raise ContractError(f"{name}: sample({n}) fails ({type(exc).__name__}: {one_line(exc)})") from None
    if torch.is_tensor(out) and out.device != device:
        raise ContractError(f"{name}: sample({n}) returned pairs on {out.device}; expected them on the model's "
                            f"device {device}")
    try:
        build.check_samples(out, "?", n)
    except BenchError as exc:
        raise ContractError(f"{name}: {one_line(exc).removeprefix(UNNAMED)}") from None
    if not out.is_floating_point():
        raise ContractError(f"{name}: sample({n}) returned {out.dtype}; expected a floating tensor")
    if tuple(out.shape[-2:]) != tuple(size):
        raise ContractError(f"{name}: sample({n}) returned {out.shape[-2]}x{out.shape[-1]} pairs; its factory "
                            f"was given size={tuple(size)}")
    return out


def check_sampling(gen: Generator, size: tuple[int, int], device: torch.device, n_real: int, name: str
                   ) -> torch.Tensor:
    """Samples draw only from ``rng``: one seed twice gives identical pairs, another seed different ones; and
    a large ``n`` (the harness asks for up to 256 at a time) works. Returns the pairs of seed 1."""
    first = sampled(gen, 5, 1, size, device, name)
    if not same(first, sampled(gen, 5, 1, size, device, name), device):
        raise ContractError(f"{name}: sample(5) twice with rng seeded alike returned different pairs; sample must "
                            "draw only from rng (not the global torch generator, random or numpy)")
    if torch.equal(first, sampled(gen, 5, 2, size, device, name)):
        raise ContractError(f"{name}: sample(5) with rng seeded 1 and 2 returned identical pairs; it ignores rng")
    sampled(gen, 2 * n_real + 1, 3, size, device, name)
    return first


def check_generator(host: Any, gen: str, *, real: torch.Tensor, builder: GeneratorBuilder,
                    size: tuple[int, int] = (32, 32), device: str = "cpu", width: float = 0.25,
                    epochs: int = 1) -> dict[str, Any]:
    """Generator ``gen`` (a name or ``NAME?key=value``) keeps its contract: GeneratorMeta, a ``bench.api.Generator``
    with a bool ``cacheable``, ``fit`` on ``real`` (pairs as the harness hands them; the first :data:`FIT_PAIRS`)
    returns finite floats, ``sample`` is checked as a run checks it and draws only from ``rng``, a second build
    (with the declared defaults given) fitted alike samples alike, and for a cacheable generator ``seed=``
    changes its weights and ``state_dict`` restores it in a fresh build. Raises :class:`ContractError`."""
    component = lookup(host, "generators", gen, "--gen")
    name = who(component, gen.strip())
    if not isinstance(component.meta, GeneratorMeta):
        raise ContractError(f"{name}: registered with {type(component.meta).__name__} metadata; expected "
                            "GeneratorMeta")
    explicit, given = with_defaults(host, "generators", gen, "--gen")
    config: dict[str, Any] = {"size": format_size(size), "width": width, "lr": GAN_LR}
    if component.meta.iterative:
        config["sample_steps"] = SAMPLE_STEPS
    config_given = {**config, "options": parse_spec(explicit, "--gen").options}
    config["options"] = parse_spec(gen, "--gen").options
    dev = torch.device(device)
    data = real[:FIT_PAIRS].to(dev)

    def fitted_samples(cfg: dict[str, Any], context: str = "") -> torch.Tensor:
        with options.keeping_defaults():
            built = seeded_generator(builder, component, cfg, 0, 0, name, context)
        other = moved(built, dev, name)
        fitted(other, data, epochs, dev, name)
        return sampled(other, 5, 1, size, dev, name)

    with isolated_rng(dev):
        first = seeded_generator(builder, component, config, 0, 0, name)
        initial = flat_tensors(tensors_of(first, name))
        first = moved(first, dev, name)
        stats = fitted(first, data, epochs, dev, name)
        samples = check_sampling(first, size, dev, len(data), name)
        context = f"built with its declared defaults given ({given}): " if given else ""
        if not same(samples, fitted_samples(config_given, context), dev):
            if given and same(samples, fitted_samples(config), dev):
                raise defaults_differ(name, given, "it samples differently after the same fit")
            raise ContractError(f"{name}: two builds with seed=0 fitted alike sample differently from rng seeded "
                                "alike; the factory and fit() must draw only from seed=, rng= and the seeded "
                                "global generators")
        if first.cacheable:
            check_cacheable(builder, component, config, first, initial, samples, size, dev, name)
    return {"generator": gen.strip(), "plugin": component.plugin, "size": format_size(size), "device": str(dev),
            "cacheable": first.cacheable, "iterative": bool(component.meta.iterative), "fit": stats,
            "defaults_given": given or None, "state_tensors": len(initial)}


def check_cacheable(builder: GeneratorBuilder, component: Component, config: dict[str, Any], fitted_gen: Generator,
                    initial: dict[str, torch.Tensor], samples: torch.Tensor, size: tuple[int, int],
                    device: torch.device, name: str) -> None:
    """What the generator cache relies on. A build with ``seed=1`` starts from other weights than ``initial``
    (seed 0's): the cache key holds the seed, so a generator ignoring it would train one model under many keys.
    The same build, loading the fitted generator's ``state_dict`` as a cache hit does (loaded on the CPU, then
    moved), samples what the fitted one samples; otherwise the cache would serve another generator."""
    fresh = seeded_generator(builder, component, config, 1, 1, name)
    if initial and first_difference(initial, flat_tensors(tensors_of(fresh, name))) is None:
        raise ContractError(f"{name}: ignores its seed: builds with seed=0 and seed=1 have identical weights; "
                            "initialise from seed= (a run's seed must change the generator)")
    try:
        fresh.load_state_dict(tensors_of(fitted_gen, name))
    except Exception as exc:
        raise ContractError(f"{name}: load_state_dict(state_dict()) fails on a fresh build "
                            f"({type(exc).__name__}: {one_line(exc)})") from None
    if not same(samples, sampled(moved(fresh, device, name), 5, 1, size, device, name), device):
        raise ContractError(f"{name}: a fresh build that loads state_dict() samples differently from the fitted "
                            "generator; the generator cache would serve another model (save every tensor sample "
                            "uses, or set cacheable = False)")


# -- losses -------------------------------------------------------------------------------------------------------


def loss_inputs(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits in [-2, 2] and a binary mask, ``(2, 1, 8, 8)``, as ``build.check_loss`` uses."""
    logits = torch.linspace(-2.0, 2.0, 2 * 8 * 8).reshape(2, 1, 8, 8)
    target = (torch.arange(2 * 8 * 8).reshape(2, 1, 8, 8) % 3 == 0).float()
    return logits.to(device), target.to(device)


def loss_value(loss_fn: Callable[..., Any], logits: torch.Tensor, target: torch.Tensor, name: str) -> torch.Tensor:
    """``loss_fn(logits, target)``, which must be one finite float32 scalar tensor on the logits' device."""
    dtype = str(logits.dtype).replace("torch.", "")
    try:
        out = loss_fn(logits, target)
    except Exception as exc:
        raise ContractError(f"{name}: fails on {dtype} logits on {logits.device} "
                            f"({type(exc).__name__}: {one_line(exc)})") from None
    if not torch.is_tensor(out) or out.numel() != 1:
        got = f"shape {tuple(out.shape)}" if torch.is_tensor(out) else f"{type(out).__name__} {one_line(repr(out))[:40]}"
        raise ContractError(f"{name}: returned {got} for {dtype} logits; expected one scalar tensor that "
                            "backpropagates to the logits")
    if out.device != logits.device:
        raise ContractError(f"{name}: returned its value on {out.device} for logits on {logits.device}; expected "
                            "the logits' device")
    if out.dtype != torch.float32:
        raise ContractError(f"{name}: returned {str(out.dtype).replace('torch.', '')} for {dtype} logits; expected "
                            "float32 (compute in float32: logits.float())")
    if not torch.isfinite(out.detach()).all():
        raise ContractError(f"{name}: returned {float(out.detach())} for {dtype} logits; expected a finite value")
    return out


def built_loss(host: Any, spec: str, name: str, context: str = "") -> Callable[..., Any]:
    """The loss function ``spec`` names, built as a run builds it (options checked and passed to the factory)."""
    try:
        loss_fn = build.build_loss(host, spec)
    except BenchError as exc:
        raise failure(name, context, exc) from None
    if not callable(loss_fn):
        raise ContractError(f"{name}: its factory returned {type(loss_fn).__name__}, not a function "
                            "loss(logits, target)")
    return loss_fn


def check_loss(host: Any, loss: str, *, device: str = "cpu") -> dict[str, Any]:
    """Loss ``loss`` keeps its contract: one finite float32 scalar tensor on ``device`` for float32 and bfloat16
    logits; what a run checks before any data work (``build.check_loss``: it backpropagates to the logits); a
    finite gradient; a perfect prediction scoring lower than a wrong one; the same value twice for the same
    inputs. Raises :class:`ContractError`."""
    component = lookup(host, "losses", loss, "--loss")
    name = who(component, loss.strip())
    explicit, given = with_defaults(host, "losses", loss, "--loss")
    loss_fn = built_loss(host, loss, name)
    dev = torch.device(device)
    logits, target = loss_inputs(dev)
    value = loss_value(loss_fn, logits, target, name)
    if given:
        with options.keeping_defaults():
            other = built_loss(host, explicit, name, f"built with its declared defaults given ({given}): ")
        if not torch.equal(value.detach(), loss_value(other, logits, target, name).detach()):
            raise defaults_differ(name, given, "it returns another value")
    try:
        build.check_loss(loss_fn, name)
    except BenchError as exc:
        raise ContractError(one_line(exc)) from None
    for dtype in (torch.float32, torch.bfloat16):
        x = logits.detach().to(dtype).clone().requires_grad_(True)
        loss_value(loss_fn, x, target, name).backward()
        if x.grad is None or not torch.isfinite(x.grad).all():
            raise ContractError(f"{name}: gives {'no' if x.grad is None else 'a non-finite'} gradient to "
                                f"{str(dtype).replace('torch.', '')} logits")
    perfect = float(loss_value(loss_fn, torch.where(target > 0.5, 6.0, -6.0), target, name).detach())
    wrong = float(loss_value(loss_fn, torch.where(target > 0.5, -6.0, 6.0), target, name).detach())
    if not perfect < wrong:
        raise ContractError(f"{name}: scores a perfect prediction ({perfect:.4g}) no lower than a wrong one "
                            f"({wrong:.4g}); a loss must decrease as the prediction improves")
    again = [loss_value(loss_fn, logits, target, name).detach() for _ in range(2)]
    if not torch.equal(again[0], again[1]):
        raise ContractError(f"{name}: returned {float(again[0])} then {float(again[1])} on the same logits and mask; "
                            "expected the same value")
    return {"loss": loss.strip(), "plugin": component.plugin, "device": str(dev), "perfect": perfect,
            "wrong": wrong, "dtypes": ["float32", "bfloat16"], "defaults_given": given or None}


# -- schedules ----------------------------------------------------------------------------------------------------


def phases_of(host: Any, spec: str, config: Any, name: str, context: str = "") -> list[Phase]:
    """The phases schedule ``spec`` (a name or ``NAME?key=value``) gives for ``config``, checked as a run checks
    them (a non-empty list of Phase, epochs counted from 0). ``context`` prefixes a failure to build."""
    try:
        resolved = options.resolve_spec(host, "schedules", spec, "--schedule")
        phases = build.build_component(host.registry.get("schedules", resolved.spec.name), config,
                                       **resolved.options)
    except BenchError as exc:
        raise failure(name, context, exc) from None
    if not isinstance(phases, list) or not phases or not all(
            isinstance(p, Phase) and isinstance(p.epochs, int) and p.epochs >= 0 for p in phases):
        raise ContractError(f"{name}: its factory returned {one_line(repr(phases))[:120]}; expected a non-empty list "
                            "of bench.api.Phase with epochs >= 0")
    return phases


def check_schedule(host: Any, schedule: str, *, config: Any) -> dict[str, Any]:
    """Schedule ``schedule`` keeps its contract for ``config`` (a run's ``RunConfig``, a dataclass): phases as a
    run checks them, the same with its declared defaults given; ``ScheduleMeta.needs_generator`` true exactly
    when a phase reads synthetic or mixed batches; every epoch setting its phases change with is among
    ``ScheduleMeta.uses`` (otherwise runs differing in it would count as one experiment). Raises
    :class:`ContractError`."""
    component = lookup(host, "schedules", schedule, "--schedule")
    name = who(component, schedule.strip())
    meta = component.meta
    if not isinstance(meta, ScheduleMeta):
        raise ContractError(f"{name}: registered with {type(meta).__name__} metadata; expected "
                            "ScheduleMeta(needs_generator=, uses=)")
    phases = phases_of(host, schedule, config, name)
    explicit, given = with_defaults(host, "schedules", schedule, "--schedule")
    with options.keeping_defaults():
        explicit_phases = phases_of(host, explicit, config, name, f"built with its declared defaults given ({given}): ") \
            if given else phases
    if explicit_phases != phases:
        raise defaults_differ(name, given, "it gives other phases")
    generated = [p.name for p in phases if p.source != "real"]
    if bool(generated) != meta.needs_generator:
        said = "phase " + ", ".join(repr(p) for p in generated) + " reads generated pairs" if generated \
            else "no phase reads generated pairs"
        raise ContractError(f"{name}: {said}, but ScheduleMeta(needs_generator={meta.needs_generator})")
    declared = meta.uses or EPOCH_FIELDS
    reads = []
    for field in EPOCH_FIELDS:
        changed = dataclasses.replace(config, **{field: getattr(config, field) + 7})
        if phases_of(host, schedule, changed, name) != phases:
            reads.append(field)
    undeclared = [f for f in reads if f not in declared]
    if undeclared:
        raise ContractError(f"{name}: its phases change with {', '.join(undeclared)}, which ScheduleMeta.uses "
                            f"({', '.join(declared)}) leaves out; runs differing in it would count as one experiment")
    return {"schedule": schedule.strip(), "plugin": component.plugin,
            "phases": [(p.name, p.source, p.epochs) for p in phases], "reads": reads,
            "needs_generator": meta.needs_generator, "defaults_given": given or None}
