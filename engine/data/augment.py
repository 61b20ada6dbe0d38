"""The image pipeline as batched tensor operations that run wherever the batch is (CPU or GPU).

Random parameters come from a generator seeded by (seed, step), so a batch's augmentation depends
only on where it sits in the run: resuming mid-epoch reproduces it exactly, with no RNG state to save.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..transform_specs import TransformSpec

_GOLDEN = 0x9E3779B97F4A7C15


def batch_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator unique to (seed, step)."""
    return torch.Generator().manual_seed((seed * _GOLDEN + step * 0x2545F4914F6CDD1D) % (2**63 - 1))


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) * (high - low) + low


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move host-made random parameters to the batch's device without making the host wait."""
    if device.type == "cuda":
        # A copy from pageable memory waits for the device to catch up; pinned memory does not.
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased) resize to size×size; a no-op when already that size."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Crop (zero-padding first if too small) the centre size×size."""
    h, w = x.shape[-2:]
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size]


def random_crop(x: torch.Tensor, size: int, padding: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad every side, then cut size×size at an independent random offset per image."""
    n = x.shape[0]
    if padding:
        x = F.pad(x, (padding,) * 4)
    h, w = x.shape[-2:]
    if h < size or w < size:
        x = center_crop(x, max(size, h, w))
        h, w = x.shape[-2:]
    top = to_device(torch.randint(0, h - size + 1, (n,), generator=g), x.device)
    left = to_device(torch.randint(0, w - size + 1, (n,), generator=g), x.device)
    ar = torch.arange(size, device=x.device)
    rows = (top[:, None] + ar)[:, None, :, None]  # N,1,S,1
    cols = (left[:, None] + ar)[:, None, None, :]  # N,1,1,S
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return x[batch, chan, rows, cols]


def random_flip(x: torch.Tensor, p: float, dim: int, g: torch.Generator) -> torch.Tensor:
    """Mirror each image along `dim` with probability p."""
    mask = to_device(torch.rand(x.shape[0], generator=g) < p, x.device)
    return torch.where(mask[:, None, None, None], x.flip(dim), x)


def random_rotation(x: torch.Tensor, degrees: float, g: torch.Generator) -> torch.Tensor:
    """Rotate each image about its centre by an angle in [-degrees, degrees], filling with zeros."""
    angle = _uniform(x.shape[0], -degrees, degrees, g) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(to_device(theta, x.device).to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        # Python-float weights: a weight tensor would be one more host-to-device copy per batch.
        return x[:, 0:1] * 0.299 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114
    return x.mean(1, keepdim=True)


def color_jitter(x: torch.Tensor, brightness: float, contrast: float, saturation: float,
                 g: torch.Generator) -> torch.Tensor:
    """Scale brightness, contrast and (RGB) saturation by independent random factors per image."""
    n = x.shape[0]

    def factor(spread: float) -> torch.Tensor:
        return to_device(_uniform(n, max(0.0, 1 - spread), 1 + spread, g), x.device).to(x.dtype)[:, None, None, None]

    if brightness:
        x = (x * factor(brightness)).clamp(0, 1)
    if contrast:
        m = _gray(x).mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - m) * factor(contrast) + m).clamp(0, 1)
    if saturation and x.shape[1] == 3:
        gray = _gray(x)
        x = ((x - gray) * factor(saturation) + gray).clamp(0, 1)
    return x


def random_erasing(x: torch.Tensor, p: float, scale: float, g: torch.Generator) -> torch.Tensor:
    """With probability p per image, set a random rectangle covering 2%..scale of it to zero."""
    n, _, h, w = x.shape
    area = _uniform(n, min(0.02, scale), scale, g) * h * w
    log_ratio = _uniform(n, math.log(0.3), math.log(3.3), g)
    ratio = torch.exp(log_ratio)
    eh = torch.sqrt(area * ratio).round().clamp(1, h).long()
    ew = torch.sqrt(area / ratio).round().clamp(1, w).long()
    top = (torch.rand(n, generator=g) * (h - eh + 1)).long()
    left = (torch.rand(n, generator=g) * (w - ew + 1)).long()
    on = torch.rand(n, generator=g) < p
    rows = torch.arange(h)[None, :]
    cols = torch.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
    mask = to_device(in_rows[:, :, None] & in_cols[:, None, :] & on[:, None, None], x.device)
    return x.masked_fill(mask[:, None], 0.0)


def apply(spec: TransformSpec, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """Apply one transform to a float batch in [0, 1]; random ones are skipped when g is None."""
    p = spec.resolved()
    name = spec.name
    if name == "Resize":
        return resize(x, int(p["size"]))
    if name == "CenterCrop":
        return center_crop(x, int(p["size"]))
    if g is None:
        # Evaluation: a random crop still fixes the output size, so crop the centre instead.
        return center_crop(x, int(p["size"])) if name == "RandomCrop" else x
    if name == "RandomCrop":
        return random_crop(x, int(p["size"]), int(p["padding"]), g)
    if name == "RandomHorizontalFlip":
        return random_flip(x, float(p["p"]), -1, g)
    if name == "RandomVerticalFlip":
        return random_flip(x, float(p["p"]), -2, g)
    if name == "RandomRotation":
        return random_rotation(x, float(p["degrees"]), g)
    if name == "ColorJitter":
        return color_jitter(x, float(p["brightness"]), float(p["contrast"]), float(p["saturation"]), g)
    if name == "RandomErasing":
        return random_erasing(x, float(p["p"]), float(p["scale"]), g)
    raise ValueError(f"unknown transform {name!r}")


class Pipeline:
    """uint8 batch -> float batch in [0, 1] -> transforms in order -> Normalize."""

    def __init__(self, specs: list[TransformSpec], mean: tuple[float, ...], std: tuple[float, ...],
                 seed: int = 0):
        self.specs = list(specs)
        self.seed = seed
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) if mean else None
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) if mean else None
        self.has_random = any(s.kind is not None and s.kind.random for s in self.specs)
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}  # mean, std per device

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 0..255 -> float32 0..1 (on the batch's own device)."""
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()

    def transform(self, x: torch.Tensor, step: int | None) -> torch.Tensor:
        """Run the transforms (not Normalize); step=None gives the evaluation (deterministic) path."""
        g = None if step is None else batch_generator(self.seed, step)
        for spec in self.specs:
            x = apply(spec, x, g)
        return x

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / std per channel."""
        if self.mean is None:
            return x
        mean, std = self.stats(x.device)
        return (x - mean) / std

    def stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std on `device`, copied there once rather than once per batch."""
        if device not in self._stats:
            self._stats[device] = (self.mean.to(device), self.std.to(device))  # type: ignore[union-attr]
        return self._stats[device]

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of normalize, for showing a model input as an image."""
        if self.mean is None:
            return x
        mean, std = self.stats(x.device)
        return x * std + mean

    def train_batch(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """Model input for a training batch at global `step`."""
        return self.normalize(self.transform(self.to_float(x), step))

    def eval_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Model input for an evaluation batch (no random transforms)."""
        return self.normalize(self.transform(self.to_float(x), None))

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """C, H, W of a model input made from an image of `shape`."""
        return tuple(self.eval_batch(torch.zeros((1, *shape), dtype=torch.uint8)).shape[1:])  # type: ignore[return-value]
