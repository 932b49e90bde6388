"""The contracts plugins implement: generators (image+mask GANs), schedule phases, and each kind's metadata."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import MISSING, dataclass, field, fields
from typing import Protocol, Any, Callable, Mapping

import torch

SOURCES = ("real", "synthetic", "mixed")
EPOCH_FIELDS = ("epochs", "synthetic_epochs", "finetune_epochs")


def _check_options(meta: Any) -> None:
    """Every declared option is a plain default of a known type or a :class:`bench.api.Option` (checked at
    registration, so a plugin with a bad declaration is refused naming it, not a run later)."""
    from bench.plugin.options import declared

    declared(meta)


@dataclass(frozen=True)
class SegmenterMeta:
    """What a segmenter must declare: its input size (``HxW``), channel set and default loss; and the options its
    factory takes (``--seg NAME?key=value``), each a default or a :class:`bench.api.Option`."""

    size: str
    channels: str
    loss: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from bench.data import channels
        from bench.data.spec import parse_size

        parse_size(self.size, "size")
        channels.channel_count(self.channels)
        if not isinstance(self.loss, str) or not self.loss:
            raise ValueError(f"loss must be a loss name, got {self.loss!r}")
        _check_options(self)


@dataclass(frozen=True)
class ScheduleMeta:
    """What a schedule must declare: whether it needs a generator, and which epoch settings it reads.

    ``uses`` names profile fields (``epochs``, ``synthetic_epochs``, ``finetune_epochs``); runs that differ
    only in a field the schedule does not read are the same experiment. Empty means "all of them".
    """

    needs_generator: bool
    uses: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    """Options the factory takes after the config (``--schedule NAME?key=value``)."""

    def __post_init__(self) -> None:
        _check_options(self)
        if not isinstance(self.needs_generator, bool):
            raise ValueError(f"needs_generator must be True or False, got {self.needs_generator!r}")
        unknown = [u for u in self.uses if u not in EPOCH_FIELDS]
        if unknown:
            raise ValueError(f"uses: unknown epoch setting(s) {', '.join(unknown)}; expected {', '.join(EPOCH_FIELDS)}")
        object.__setattr__(self, "uses", tuple(self.uses))


@dataclass(frozen=True)
class GeneratorMeta:
    """A generator's default output size (``HxW``, for ``bench describe``) and the options its factory takes
    (``--gen NAME?key=value``, passed as keyword arguments; they enter the cache key and the run's identity).

    ``iterative``: the generator samples in a number of steps the user chooses (a diffusion model's sampler):
    its factory takes ``sample_steps=``, given from the ``sample_steps`` profile field, which then enters the
    run's identity (not the cache key: training does not depend on it).
    """

    size: str = "192x256"
    iterative: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from bench.data.spec import parse_size

        parse_size(self.size, "size")
        _check_options(self)


@dataclass(frozen=True)
class OptionsMeta:
    """Losses, datasets and loggers: the options their factory takes (``NAME?key=value``), each a default or a
    :class:`bench.api.Option`; checked and typed by the harness, shown by ``bench describe``."""

    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_options(self)


META_TYPES: dict[str, type] = {"segmenters": SegmenterMeta, "schedules": ScheduleMeta,
                               "generators": GeneratorMeta, "losses": OptionsMeta, "datasets": OptionsMeta,
                               "loggers": OptionsMeta}


def meta_from(kind: str, meta: Any, defaults: Mapping[str, Any] | None) -> Any:
    """The typed metadata of a component of ``kind``: ``meta`` as given, or built from a ``defaults`` dict.

    Raises ``ValueError``/``TypeError`` saying what is missing or wrong (the registry names the plugin).
    """
    cls = META_TYPES[kind]
    if meta is not None:
        if not isinstance(meta, cls):
            raise TypeError(f"meta must be a {cls.__name__}, got {type(meta).__name__}")
        return meta
    given = dict(defaults or {})
    names = [f.name for f in fields(cls)]
    missing = [f.name for f in fields(cls) if f.name not in given and f.default is MISSING
               and f.default_factory is MISSING]
    if cls in (GeneratorMeta, OptionsMeta) and "options" not in given and not missing:
        own = {k: given.pop(k) for k in [n for n in names if n != "options"] if k in given}
        return cls(**own, options=given)
    unknown = sorted(set(given) - set(names))
    if missing or unknown:
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        optional = [n for n in names if n not in required]
        raise TypeError(f"{cls.__name__} needs {', '.join(required)}"
                        + (f" (optional: {', '.join(optional)})" if optional and not missing else "")
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unknown {', '.join(unknown)}" if unknown else ""))
    return cls(**given)


@dataclass(frozen=True)
class Phase:
    """One phase of a schedule: where batches come from and for how many epochs."""

    name: str
    source: str
    epochs: int

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"phase source must be one of {SOURCES}, got {self.source!r}")


EpochCallback = Callable[[int, dict[str, float]], None]


class Generator(ABC):
    """A generative model of 4-channel pairs: RGB and mask, each in [-1, 1], at ``size``.

    ``fit`` trains on real pairs already on the device; ``sample`` returns new pairs on the same
    device without a host round trip. The harness binarises the mask channel (``> 0``).
    """

    size: tuple[int, int]
    cacheable: bool = True
    """False for generators that only hold the real data (nothing learnt): the harness fits them every run."""

    @abstractmethod
    def fit(
        self,
        data: torch.Tensor,
        *,
        epochs: int,
        batch_size: int,
        rng: torch.Generator,
        on_epoch: EpochCallback | None = None,
    ) -> dict[str, float]:
        """Train on ``data`` ``(N, 4, H, W)``; return the last epoch's mean losses."""

    @abstractmethod
    def sample(self, n: int, *, rng: torch.Generator) -> torch.Tensor:
        """``n`` new pairs ``(n, 4, H, W)`` in [-1, 1] on the model's device."""

    @abstractmethod
    def to(self, device: torch.device) -> "Generator":
        """Move every network to ``device``."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Tensors only (checkpoints load with ``weights_only=True``)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def describe(self) -> str:
        """A human-readable summary of the networks (layers, parameter counts); override to say more."""
        doc = (type(self).__doc__ or "").strip().splitlines()
        summary = f"{type(self).__name__} generating {self.size[0]}x{self.size[1]}x4 pairs"
        return summary + (f": {doc[0]}" if doc else "")


def move_optimizer_state(optimizers: list[torch.optim.Optimizer], device: torch.device) -> None:
    """Move the tensors of optimisers' state (Adam moments) to ``device``, as ``Module.to`` does for weights."""
    for opt in optimizers:
        for state in opt.state.values():
            for key, value in state.items():
                if torch.is_tensor(value):
                    state[key] = value.to(device)


class Reporter(Protocol):
    """Receives progress: the CLI shows it with rich, tests ignore it."""

    def start_phase(self, name: str, epochs: int, steps_per_epoch: int) -> None: ...
    def advance(self, steps: int, images: int) -> None: ...
    def end_epoch(self, name: str, epoch: int, loss: float, images_per_s: float) -> None: ...
    def end_phase(self) -> None: ...


class SilentReporter:
    def start_phase(self, name: str, epochs: int, steps_per_epoch: int) -> None:
        pass

    def advance(self, steps: int, images: int) -> None:
        pass

    def end_epoch(self, name: str, epoch: int, loss: float, images_per_s: float) -> None:
        pass

    def end_phase(self) -> None:
        pass
