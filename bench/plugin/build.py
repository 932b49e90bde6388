"""Building a run's components from names: the device, datasets, the segmenter, any registered factory."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
import torch

from bench.plugin.components import Phase
from bench.data import channels
from bench.data.source import Dataset, Split, SubsetSplit
from bench.data.spec import parse_spec
from bench.errors import BenchError, ConfigError
from bench.plugin.catalog import Component, singular
from bench.plugin.options import name_of, resolve_spec


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; a clear error for anything else."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"--device: {name!r} is not a device; expected auto, cpu, cuda or cuda:N")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_dataset(host: Any, text: str, option: str) -> Dataset:
    """The dataset a ``NAME[:ARG][?k=v]`` spec names (``option`` is the flag to blame in errors)."""
    resolved = resolve_spec(host, "datasets", text, option)
    spec = resolved.spec
    component = host.registry.get("datasets", spec.name)
    dataset = build_component(component, spec.arg, **resolved.options)
    if not isinstance(dataset, Dataset):
        raise BenchError(f"dataset {spec.name!r} from plugin {component.plugin!r}: its factory returned "
                         f"{type(dataset).__name__}, not a bench.api.Dataset")
    return dataset


def build_segmenter(host: Any, seg: str, channel_set: str, width: float, weights: str | None = None,
                    encoder_weights: str | None = None) -> torch.nn.Module:
    """The segmenter ``seg`` (``NAME[:ARG][?k=v]``) for ``channel_set`` inputs, freshly initialised (its encoder
    from a local file, ``weights``, or from published pretrained weights, ``encoder_weights``, when given)."""
    resolved = resolve_spec(host, "segmenters", seg, "--seg")
    spec = resolved.spec
    component = host.registry.get("segmenters", spec.name)
    extra: dict[str, Any] = {"spec": spec.arg} if spec.arg is not None else {}
    if weights:
        extra["weights"] = weights
    if encoder_weights:
        extra["encoder_weights"] = encoder_weights
    return build_component(component, in_channels=channels.channel_count(channel_set), width=width,
                           **extra, **resolved.options)


def check_segmenter(host: Any, model: Any, seg: str, channel_set: str, size: tuple[int, int]) -> torch.nn.Module:
    """Fail before any data work when the segmenter is not a module mapping ``(1, C, H, W)`` to logits
    ``(1, 1, H, W)`` at the run's size (a U-Net at a size not divisible by 16, a wrong factory), naming it."""
    component = host.registry.get("segmenters", parse_spec(seg, "--seg").name)
    who = f"segmenter {component.name!r} from plugin {component.plugin!r}"
    if not isinstance(model, torch.nn.Module):
        raise BenchError(f"{who}: its factory returned {type(model).__name__}, not a torch.nn.Module")
    shape = (1, channels.channel_count(channel_set), *size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(shape))
    except Exception as exc:
        raise ConfigError(f"{who} cannot take --size {size[0]}x{size[1]} inputs ({type(exc).__name__}: {exc}); "
                          "choose another --size") from None
    finally:
        model.train(was_training)
    if not torch.is_tensor(out) or tuple(out.shape) != (1, 1, *size):
        got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise BenchError(f"{who}: maps {shape} to {got}; a segmenter must return logits (B, 1, H, W)")
    return model


def build_loss_and_phases(host: Any, loss: str, schedule: str, config: Any) -> tuple[Any, list[Phase]]:
    """The loss function and the schedule's phases, checked: a factory returning something else is an error
    naming its plugin, before any data work."""
    loss_fn = build_loss(host, loss)
    loss_component = host.registry.get("losses", name_of(loss))
    if not callable(loss_fn):
        raise BenchError(f"loss {loss!r} from plugin {loss_component.plugin!r}: its factory returned "
                         f"{type(loss_fn).__name__}, not a function loss(logits, target)")
    check_loss(loss_fn, f"loss {loss!r} from plugin {loss_component.plugin!r}")
    resolved = resolve_spec(host, "schedules", schedule, "--schedule")
    sched = host.registry.get("schedules", resolved.spec.name)
    phases = build_component(sched, config, **resolved.options)
    if not isinstance(phases, list) or not phases or not all(
            isinstance(p, Phase) and isinstance(p.epochs, int) and p.epochs >= 0 for p in phases):
        raise BenchError(f"schedule {schedule!r} from plugin {sched.plugin!r}: its factory must return a non-empty "
                         f"list of bench.api.Phase with epochs >= 0, got {phases!r:.120}")
    return loss_fn, phases


def build_loss(host: Any, loss: str) -> Any:
    """The loss function a ``NAME[?k=v]`` spec names, its options checked and passed to the factory."""
    resolved = resolve_spec(host, "losses", loss, "--loss")
    return build_component(host.registry.get("losses", resolved.spec.name), **resolved.options)


def check_loss(loss_fn: Any, who: str) -> None:
    """Fail before any data work when a loss does not map logits and a mask ``(B, 1, H, W)`` to one finite,
    differentiable scalar tensor (a loss returning a float, a shape, or NaN), naming it."""
    logits = torch.linspace(-2.0, 2.0, 2 * 8 * 8).reshape(2, 1, 8, 8).requires_grad_(True)
    target = (torch.arange(2 * 8 * 8).reshape(2, 1, 8, 8) % 3 == 0).float()
    try:
        out = loss_fn(logits, target)
    except Exception as exc:
        raise BenchError(f"{who}: fails on logits and a mask of shape (2, 1, 8, 8) ({type(exc).__name__}: {exc})") \
            from None
    if not torch.is_tensor(out) or out.numel() != 1 or not out.requires_grad:
        got = f"a tensor of shape {tuple(out.shape)}{'' if out.requires_grad else ' without a gradient'}" \
            if torch.is_tensor(out) else f"{type(out).__name__} {out!r:.40}"
        raise BenchError(f"{who}: returned {got}; a loss must return one scalar tensor that backpropagates to the "
                         "logits")
    if not torch.isfinite(out).all():
        raise BenchError(f"{who}: returned {out.item()} on logits in [-2, 2] and a mask; expected a finite value")


SAMPLE_LIMIT = 1.0 + 1e-3
"""How far outside [-1, 1] a generated value may lie (rounding of a tanh or a clamp); beyond, the contract is broken."""


def check_samples(samples: Any, name: str, n: int) -> torch.Tensor:
    """``samples`` of generator ``name`` if they keep ``Generator.sample``'s contract (``(n, 4, H, W)``, finite, in
    [-1, 1]); otherwise an error naming the generator and what it returned, never black images or empty masks
    trained on silently. One host read per call, outside the training step."""
    if not torch.is_tensor(samples) or samples.dim() != 4 or samples.shape[0] != n or samples.shape[1] != 4:
        got = tuple(samples.shape) if torch.is_tensor(samples) else type(samples).__name__
        raise BenchError(f"generator {name!r}: sample({n}) returned {got}; expected a tensor ({n}, 4, H, W): RGB and "
                         "the mask, in [-1, 1]")
    x = samples.detach()
    stats = torch.stack([(~torch.isfinite(x)).sum().float(), x.nan_to_num(0.0).amin().float(),
                         x.nan_to_num(0.0).amax().float()]).tolist()
    if stats[0] or stats[1] < -SAMPLE_LIMIT or stats[2] > SAMPLE_LIMIT:
        what = f"{int(stats[0])} non-finite values" if stats[0] else f"values from {stats[1]:.3g} to {stats[2]:.3g}"
        raise BenchError(f"generator {name!r}: sample({n}) returned {what}; Generator.sample must return pairs in "
                         "[-1, 1] (a tanh output), which the bank maps to images and masks")
    return samples


def build_component(component: Component, *args: Any, **kwargs: Any) -> Any:
    """Call a component's factory; a factory that raises fails the run naming the plugin."""
    try:
        return component.factory(*args, **kwargs)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(
            f"{singular(component.kind)} {component.name!r} from plugin {component.plugin!r} failed to build: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def fold_splits(split: Split, fold: tuple[int, int], seed: int) -> tuple[Split, Split]:
    """``(train, held out)``: the pairs of ``split`` shuffled by ``seed`` and dealt into ``n`` folds of sizes
    differing by at most one; fold ``k`` (1-based) is held out. The same ``seed`` gives the same folds."""
    k, n = fold
    if len(split) < n:
        raise ConfigError(f"--fold {k}/{n}: the training split has only {len(split)} pairs, fewer than {n} folds")
    order = np.random.default_rng(seed).permutation(len(split))
    held = sorted(int(i) for i in np.array_split(order, n)[k - 1])
    rest = sorted(set(range(len(split))) - set(held))
    label = f"fold:{k}/{n}:{seed}"
    return SubsetSplit(split, rest, f"{label}:train"), SubsetSplit(split, held, f"{label}:held-out")


def select_training(split: Split, exclude: Any, subset: int | None, subset_seed: int | None) -> Split:
    """Apply ``--exclude`` (drop listed ids) then ``--subset`` (a seeded random subset) to the training split."""
    if exclude:
        ids = split.ids()
        unknown = sorted(set(exclude.ids) - set(ids))
        if unknown:
            raise ConfigError(f"--exclude {exclude.file}: id {unknown[0]!r} is not in the training split"
                              + (f" (nor {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
        drop = set(exclude.ids)
        keep = [i for i, image in enumerate(ids) if image not in drop]
        if not keep:
            raise ConfigError(f"--exclude {exclude.file}: removes every training pair; nothing is left to train on")
        split = SubsetSplit(split, keep, f"exclude:{exclude.sha256}")
    if subset is not None:
        if subset > len(split):
            raise ConfigError(f"--subset {subset}: the training split has only {len(split)} pairs")
        rng = np.random.default_rng(subset_seed)
        chosen = sorted(int(i) for i in rng.choice(len(split), size=subset, replace=False))
        split = SubsetSplit(split, chosen, f"subset:{subset}:{subset_seed}")
    return split


def curve_holdout_ids(split: Split, fraction: float) -> frozenset[str]:
    """The ids of the pairs of ``split`` that ``--curve-split holdout:F`` holds out: the ``round(F * n)`` whose
    hash of the id is smallest. Chosen from the ids alone, never from the seed, ``--subset-seed`` or
    ``--fold-seed``, so every seed and strategy on the same data holds out the same images."""
    ids = split.ids()
    count = int(fraction * len(ids) + 0.5)
    ranked = sorted(ids, key=lambda image: (hashlib.sha256(f"skinbench curve {image}".encode()).digest(), image))
    return frozenset(ranked[:count])


def hold_out(split: Split, held: frozenset[str], spec: str, where: str) -> tuple[Split, Split]:
    """``(trained on, curve)``: the pairs of ``split`` outside ``held`` and those in it; an error naming
    ``--curve-split SPEC`` when either side is empty (``where`` says which pairs were divided)."""
    ids = split.ids()
    keep = [i for i, image in enumerate(ids) if image not in held]
    curve = [i for i, image in enumerate(ids) if image in held]
    if not keep or not curve:
        raise ConfigError(f"--curve-split {spec}: holds out {len(curve)} of the {len(ids)} {where}, leaving {len(keep)} to "
                          "train on; expected at least 1 pair on either side (another F, or more data)")
    label = f"curve-holdout:{hashlib.sha256(','.join(sorted(held)).encode()).hexdigest()[:12]}"
    return SubsetSplit(split, keep, f"{label}:train"), SubsetSplit(split, curve, f"{label}:curve")
