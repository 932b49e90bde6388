"""``--encoder-weights TAG``: a segmenter's published pretrained encoder, found locally and pinned by content.

The segmenter plugin knows where its encoders' weights are published and finds them offline (the smp adapter:
the local Hugging Face hub cache, never the network); the harness asks it for the file through its factory's
``encoder_weights_file(spec, tag)`` before any data work, and enters the file's SHA-256 in the run's identity,
as ``--weights`` does for a local file. The factory itself is then called with ``encoder_weights=TAG`` and loads
the same file. A segmenter whose factory offers neither has no pretrained encoder, which is an error naming
one that has (docs/pretrained.md).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench.data.spec import Spec
from bench.errors import BenchError, ConfigError

LOCATOR = "encoder_weights_file"
"""The attribute of a segmenter factory that finds its encoder weights: ``(spec ARG, tag) -> Path``."""


@dataclass(frozen=True)
class EncoderWeights:
    """The weights ``--encoder-weights`` names: the tag asked for, the local file found and its SHA-256."""

    tag: str
    file: str
    sha256: str


def accepts_encoder_weights(factory: Callable[..., Any]) -> bool:
    """Whether ``factory`` takes an ``encoder_weights`` keyword (by name, or through ``**options``)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "encoder_weights" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def locator(component: Any) -> Callable[[str | None, str], Any] | None:
    """The segmenter ``component``'s way of finding encoder weights, or ``None`` when it has no pretrained encoder:
    its factory must take ``encoder_weights`` and offer :data:`LOCATOR`."""
    locate = getattr(component.factory, LOCATOR, None)
    return locate if callable(locate) and accepts_encoder_weights(component.factory) else None


@functools.lru_cache(maxsize=16)
def _sha256(path: str, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> str:
    """The SHA-256 of a file, cached by path and what changes when it is rewritten or replaced (a sweep resolves
    the same file once per run)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """The SHA-256 of the bytes of ``path``."""
    stat = path.stat()
    return _sha256(str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def resolve(host: Any, seg_spec: Spec, tag: str) -> EncoderWeights:
    """The file ``--encoder-weights TAG`` loads into segmenter ``seg_spec``'s encoder, with its SHA-256; an error
    a user can act on when the segmenter has no pretrained encoder or the file is not on this machine (the
    segmenter's own message: what it looked for, where, and how to put it there)."""
    component = host.registry.get("segmenters", seg_spec.name)
    locate = locator(component)
    if locate is None:
        raise ConfigError(f"--encoder-weights {tag}: segmenter {seg_spec.name!r} has no pretrained encoder (its "
                          "factory takes no encoder_weights); use an encoder that has, e.g. --seg smp:Unet:resnet34 "
                          f"--encoder-weights {tag}")
    try:
        found = locate(seg_spec.arg, tag)
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"--encoder-weights {tag}: segmenter {seg_spec.name!r} from plugin {component.plugin!r} "
                         f"failed to find its weights: {type(exc).__name__}: {exc}") from exc
    path = Path(found) if isinstance(found, (str, Path)) else None
    if path is None or not path.is_file():
        raise ConfigError(f"--encoder-weights {tag}: segmenter {seg_spec.name!r} from plugin {component.plugin!r} "
                          f"named {found!r} as its weights file, which is not a file")
    return EncoderWeights(tag=tag, file=str(path), sha256=sha256_of(path))
