"""The reference image pool: discriminators see a history of generated images, not only the latest."""

from __future__ import annotations

import torch


class ImagePool:
    """Keeps up to ``size`` generated images; each query returns, per image, either the new one or
    (with probability 1/2 once the pool is full) a stored one that the new image then replaces.
    Uses the global torch RNG, so a seeded run draws the same history.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        chosen = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                chosen.append(image)
            elif torch.rand(1).item() > 0.5:
                index = int(torch.randint(0, self.size, (1,)).item())
                chosen.append(self.images[index].to(image.device, copy=True))  # restored on the CPU
                self.images[index] = image
            else:
                chosen.append(image)
        return torch.cat(chosen, 0)
