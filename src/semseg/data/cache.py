"""Decoded datasets held in memory, and the batch collation of ``(image, mask)`` pairs."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from semseg.data.base import PairTransform, SegmentationDataset


class CachedDataset(Dataset):
    """Decodes every pair of ``dataset`` once and keeps it in memory, then applies ``transform``
    per access (so random augmentation still differs every epoch).

    Worth it when decoding costs more than the model step per image (CPU training on
    CamVid-sized data: 367 images of 480x360 take ~190 MB). Masks are kept as ``uint8`` where every
    train id fits (a quarter of ``int64``'s memory) and handed out as ``int64`` again.

    Attributes:
        dataset: the wrapped dataset (its ``classes``, ``palette``, ``pairs`` stay reachable).
        items: the decoded ``(image uint8 (3, H, W), mask uint8 or int64 (H, W))`` pairs, untransformed.
        load_instances: the wrapped dataset's, where it has one (Cityscapes instance ids for iIoU).

    Items are ``(image, mask int64 (H, W))``, after ``transform`` if given.
    """

    def __init__(self, dataset: SegmentationDataset, transform: PairTransform | None = None) -> None:
        self.dataset = dataset
        self.transform = transform
        if hasattr(dataset, "load_instances"):  # Cityscapes: evaluation needs the instance ids (iIoU)
            self.load_instances = dataset.load_instances
        self.items: list[tuple[torch.Tensor, torch.Tensor]] = []
        for i in range(len(dataset)):
            image, mask = dataset.load_pair(i)
            # 255 here is uint8's maximum, not the ignore label: the mask fits when no value exceeds it.
            small = mask.to(torch.uint8) if int(mask.max()) <= 255 else mask
            self.items.append((image, small))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image, mask int64)`` of item ``index``, through ``transform`` when one is set."""
        image, mask = self.items[index]
        mask = mask.long()
        if self.transform is not None:
            image, mask = self.transform(image, mask)
        return image, mask


def collate_pairs(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack same-sized ``(image, mask)`` pairs into ``(N, 3, H, W)`` and ``(N, H, W)``."""
    images, masks = zip(*batch, strict=True)
    return torch.stack(images), torch.stack(masks)
