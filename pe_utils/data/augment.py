"""Batched augmentation on the training device, with per-sample parameters.

The CPU path (:class:`pe_utils.data.CacheDataset` + :mod:`pe_utils.data.transforms`) augments
one image at a time in DataLoader workers; on a GPU that is the ceiling (that loader gave
0.7x what a ResNet-50 consumed at 128 px). Here the loader only slices
``uint8`` rows (:class:`pe_utils.data.slices.CacheSlices`), and :class:`DeviceLoader` moves
each batch to the device, converts and resizes it there and augments the whole batch:

- :class:`AffineAugment`: Case1's random affine (THESIS 4.1.1: rotation 10 degrees, shift
  10 %, zoom 20 %);
- :class:`SimCLRViews`: Case3's two views (THESIS 4.2: random crop and resize, contrast
  distortion, Gaussian blur);
- :func:`tta_views`: the five fixed test-time views (THESIS 4.1.1);
- :class:`~pe_utils.data.slices.DeviceLoader` (importable from here too) applies them.

Seeding: every random parameter of a sample comes from its key ``[seed, epoch, index]``
through a counter-based hash (:mod:`pe_utils.data.keys`), never from a generator's state:
a sample is augmented the same in any batch, order, device or number of devices, and the
same code runs on the CPU. The geometry is kornia's (``warp_affine``, ``gaussian_blur2d``):
each sample gets its own matrix and its own blur sigma.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
from .keys import key_uniforms
from .slices import DeviceLoader  # noqa: F401  (the device path's loader, importable from here too)

__all__ = ["AffineAugment", "SimCLRViews", "tta_views", "tta_shift_pixels", "TTA_VIEW_NAMES"]

#: Case1's training augmentation (THESIS 4.1.1, Keras ImageDataGenerator ranges): rotation range in
#: degrees, horizontal and vertical shift as a fraction of the image side, zoom range
AUG_ROTATION = 10.0
AUG_SHIFT = 0.1
AUG_ZOOM = 0.2
#: names of the TTA views, in the order :func:`tta_views` returns them (THESIS 4.1.1)
TTA_VIEW_NAMES: tuple[str, ...] = ("original", "rotate10", "shift_v10px", "shift_h10px", "crop75")
#: 10 px at 128 px (THESIS 4.1.1) as a fraction of the image side: 10 / 128 = 7.8 %
TTA_SHIFT_FRACTION = 0.078
#: rotation of the TTA "rotate10" view, degrees (counter-clockwise)
TTA_ROTATION = 10.0
#: side of the central crop of the "crop75" view, as a fraction of the image side
TTA_CROP_FRACTION = 0.75


def tta_shift_pixels(size: int) -> int:
    """Pixels of the TTA shift for an image side of ``size``: ``max(1, round(0.078 * size))``.

    10 px at 128 (THESIS 4.1.1), 5 px at 64, 2 px at 32.
    """
    return max(1, round(TTA_SHIFT_FRACTION * size))


def _uniforms(keys: torch.Tensor, n: int, stream: int, device: torch.device) -> torch.Tensor:
    """``(B, n)`` uniforms of the keys on ``device`` (one small host-to-device copy)."""
    u = key_uniforms(keys, n, stream)
    if device.type == "cuda":
        u = u.pin_memory()  # the caching host allocator: no cudaHostAlloc per batch
    return u.to(device, non_blocking=True)


def _warp(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Each image of ``x`` ``(B, C, H, W)`` through its ``(B, 2, 3)`` pixel-coordinate matrix
    (source -> destination, OpenCV convention); bilinear, 0 outside the image."""
    # kornia imported where used: 0.25 s of CPU that a notebook importing only the TTA
    # names (or the CPU path, through transforms) need not pay
    from kornia.geometry.transform import warp_affine

    return warp_affine(x, matrix.to(x.dtype), dsize=tuple(x.shape[-2:]), mode="bilinear",
                       padding_mode="zeros", align_corners=True)


def _affine_matrix(angle: torch.Tensor, shift_px: torch.Tensor, scale: torch.Tensor,
                   h: int, w: int) -> torch.Tensor:
    """``(B, 2, 3)``: rotate by ``angle`` degrees (counter-clockwise on screen) and scale
    about the image centre, then shift by ``shift_px`` ``(B, 2)`` = (dx right, dy down)."""
    from kornia.geometry.transform import get_affine_matrix2d

    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=angle.device).expand(len(angle), 2)
    # kornia turns a positive angle clockwise on screen: negated, as torchvision's F.rotate
    return get_affine_matrix2d(shift_px, centre, scale[:, None].expand(-1, 2), -angle)[:, :2]


class AffineAugment:
    """Random affine per sample (THESIS 4.1.1, Keras ``ImageDataGenerator`` ranges).

    Args:
        rotation: maximum rotation, degrees; angle uniform in [-rotation, rotation].
        shift: maximum shift, fraction of the side; dx, dy uniform in [-shift, shift] x side
            (continuous; torchvision's ``RandomAffine`` rounds to whole pixels).
        zoom: one isotropic scale uniform in [1 - zoom, 1 + zoom] (as
            :func:`pe_utils.data.transforms.train_transform`).

    Call: ``augment(x (B, C, H, W) float in [0, 1], keys (B, 3) int64) -> (B, C, H, W)``;
    pixels from outside the image are 0 (as the CPU path).

    Raises:
        ValueError: a negative range, ``zoom >= 1`` or ``shift > 1``.
    """

    def __init__(self, rotation: float = AUG_ROTATION, shift: float = AUG_SHIFT, zoom: float = AUG_ZOOM) -> None:
        if rotation < 0 or shift < 0 or zoom < 0:
            raise ValueError(f"ranges must be >= 0, got rotation={rotation}, shift={shift}, zoom={zoom}")
        if zoom >= 1 or shift > 1:
            raise ValueError(f"need zoom < 1 and shift <= 1, got zoom={zoom}, shift={shift}")
        self.rotation, self.shift, self.zoom = float(rotation), float(shift), float(zoom)

    def params(self, keys: torch.Tensor, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Each sample's parameters: ``angle`` (B,) degrees, ``shift`` (B, 2) fractions of
        the side (dx, dy), ``scale`` (B,)."""
        u = _uniforms(keys, 4, 0, torch.device(device)) * 2 - 1      # (B, 4) in [-1, 1)
        return {"angle": u[:, 0] * self.rotation, "shift": u[:, 1:3] * self.shift,
                "scale": 1 + u[:, 3] * self.zoom}

    def __call__(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        p = self.params(keys, x.device)
        shift_px = p["shift"] * torch.tensor([w, h], device=x.device, dtype=p["shift"].dtype)
        return _warp(x, _affine_matrix(p["angle"], shift_px, p["scale"], h, w))

    def __repr__(self) -> str:
        return f"AffineAugment(rotation={self.rotation}, shift={self.shift}, zoom={self.zoom})"


class SimCLRViews:
    """Two random views of each image for contrastive pretraining (THESIS 4.2).

    THESIS 4.2 names the three augmentations: random crop and resize, contrast distortion
    (the images are gray: no colour; 4.2.1: "contrast distortion only"), Gaussian blur. The
    numbers are *our choice* where the thesis gives none; SimCLR's (Chen et al. 2020, appendix
    A) are given for each. Each profile's ``pretrain`` section sets them (``view_*``): the
    thesis profile has no brightness jitter, the CPU profiles add it (*our choice*).

    Args:
        crop_scale: crop area as a fraction of the image, uniform in this range. *Our
            choice* 0.2-1 (SimCLR: 0.08-1; at 128 px an 8 % crop is 36 px, smaller than
            many clots' context).
        crop_ratio: crop aspect ratio, log-uniform in this range; SimCLR's 3/4-4/3. A crop
            that would not fit is clipped to the image.
        contrast: contrast factor uniform in [1 - contrast, 1 + contrast] about each image's
            mean. *Our choice* 0.4 = SimCLR's 0.8 x strength s with s = 0.5 (their
            CIFAR-10 strength).
        brightness: brightness factor uniform in [1 - brightness, 1 + brightness]; 0 turns it
            off (the thesis's views); the default 0.4 as ``contrast``.
        jitter_probability: probability of the brightness/contrast jitter; SimCLR's 0.8.
        blur_probability: probability of the blur; SimCLR's 0.5.
        blur_sigma: blur sigma in pixels, uniform in this range; SimCLR's 0.1-2.0.
        blur_kernel: kernel side as a fraction of the image side (made odd); SimCLR's 10 %.

    Call: ``views(x (B, C, H, W) float in [0, 1], keys (B, 3)) -> (view1, view2)``, each
    ``(B, C, H, W)`` in [0, 1]; the views come from streams 0 and 1 of each key.

    Channels: a sample's parameters are drawn once and act on all its channels alike, so a
    gray slice (C = 1), RGB windows (C = 3) and a 2.5D stack of a slice with its neighbours
    (:mod:`pe_utils.data.context`) are treated the same way: one crop of every channel, one
    brightness factor, one contrast map about the mean of all channels (a slice stacked with
    copies of itself gets its single-slice view), a blur within each channel. No hue,
    saturation or grayscale step reads the channels as colours, so no channel is mixed into
    another.

    Raises:
        ValueError: a range out of order or outside its bounds, a probability outside [0, 1].
    """

    def __init__(self, crop_scale: tuple[float, float] = (0.2, 1.0),
                 crop_ratio: tuple[float, float] = (3 / 4, 4 / 3), contrast: float = 0.4,
                 brightness: float = 0.4, jitter_probability: float = 0.8,
                 blur_probability: float = 0.5, blur_sigma: tuple[float, float] = (0.1, 2.0),
                 blur_kernel: float = 0.1) -> None:
        if not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {crop_scale}")
        if not 0 < crop_ratio[0] <= crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < lo <= hi, got {crop_ratio}")
        if not (0 <= contrast < 1 and 0 <= brightness < 1):
            raise ValueError(f"contrast and brightness must be in [0, 1), got {contrast}, {brightness}")
        if not (0 <= jitter_probability <= 1 and 0 <= blur_probability <= 1):
            raise ValueError("probabilities must be in [0, 1]")
        if not 0 < blur_sigma[0] <= blur_sigma[1] or not 0 < blur_kernel <= 1:
            raise ValueError(f"need 0 < blur_sigma lo <= hi and 0 < blur_kernel <= 1, got "
                             f"{blur_sigma}, {blur_kernel}")
        self.crop_scale, self.crop_ratio = tuple(map(float, crop_scale)), tuple(map(float, crop_ratio))
        self.contrast, self.brightness = float(contrast), float(brightness)
        self.jitter_probability, self.blur_probability = float(jitter_probability), float(blur_probability)
        self.blur_sigma, self.blur_kernel = tuple(map(float, blur_sigma)), float(blur_kernel)

    def params(self, keys: torch.Tensor, stream: int = 0,
               device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """Each sample's parameters for view ``stream`` (0 or 1): ``box`` (B, 4) = crop
        (x0, y0, width, height) as fractions of the side; ``brightness``, ``contrast``
        (B,) factors (1 where the jitter is off); ``sigma`` (B,) (0 where the blur is off)."""
        u = _uniforms(keys, 8, stream, torch.device(device))          # (B, 8) in [0, 1)
        lo, hi = self.crop_scale
        area = lo + (hi - lo) * u[:, 0]
        log_r = math.log(self.crop_ratio[0]) + math.log(self.crop_ratio[1] / self.crop_ratio[0]) * u[:, 1]
        cw = torch.sqrt(area * torch.exp(log_r)).clamp(max=1.0)
        ch = torch.sqrt(area / torch.exp(log_r)).clamp(max=1.0)
        box = torch.stack([(1 - cw) * u[:, 2], (1 - ch) * u[:, 3], cw, ch], dim=1)
        jitter = u[:, 4] < self.jitter_probability
        one = torch.ones_like(area)
        brightness = torch.where(jitter, 1 + self.brightness * (2 * u[:, 5] - 1), one)
        contrast = torch.where(jitter, 1 + self.contrast * (2 * u[:, 6] - 1), one)
        # the blur's own coin and sigma from one uniform: below p it blurs, rescaled to [0, 1)
        blur = u[:, 7] < self.blur_probability
        t = u[:, 7] / max(self.blur_probability, 1e-12)
        sigma = torch.where(blur, self.blur_sigma[0] + (self.blur_sigma[1] - self.blur_sigma[0]) * t,
                            torch.zeros_like(t))
        return {"box": box, "brightness": brightness, "contrast": contrast, "sigma": sigma}

    def view(self, x: torch.Tensor, keys: torch.Tensor, stream: int = 0) -> torch.Tensor:
        """One view of each image (stream 0 or 1 of its key), ``(B, C, H, W)``."""
        from kornia.filters import gaussian_blur2d

        h, w = x.shape[-2:]
        p = self.params(keys, stream, x.device)
        # crop box -> whole image: destination pixel j samples source x0 + (j + 0.5) a - 0.5
        size = torch.tensor([w, h], device=x.device, dtype=torch.float32)
        a = p["box"][:, 2:]                                           # (B, 2) crop / side
        b = p["box"][:, :2] * size + 0.5 * a - 0.5                    # (B, 2) pixels
        matrix = torch.zeros(len(x), 2, 3, device=x.device)
        matrix[:, 0, 0], matrix[:, 1, 1] = 1 / a[:, 0], 1 / a[:, 1]
        matrix[:, :, 2] = -b / a
        v = _warp(x, matrix)
        v = (v * p["brightness"].view(-1, 1, 1, 1).to(v.dtype)).clamp(0, 1)
        mean = v.mean(dim=(1, 2, 3), keepdim=True)
        v = ((v - mean) * p["contrast"].view(-1, 1, 1, 1).to(v.dtype) + mean).clamp(0, 1)
        k = max(3, int(round(self.blur_kernel * min(h, w))) // 2 * 2 + 1)
        sigma = p["sigma"].clamp(min=1e-3)[:, None].expand(-1, 2).to(v.dtype)
        blurred = gaussian_blur2d(v, (k, k), sigma, border_type="reflect")
        return torch.where((p["sigma"] > 0).view(-1, 1, 1, 1), blurred, v)

    def __call__(self, x: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.view(x, keys, 0), self.view(x, keys, 1)

    def __repr__(self) -> str:
        return (f"SimCLRViews(crop_scale={self.crop_scale}, crop_ratio={self.crop_ratio}, "
                f"contrast={self.contrast}, brightness={self.brightness}, "
                f"jitter_probability={self.jitter_probability}, blur_probability={self.blur_probability}, "
                f"blur_sigma={self.blur_sigma}, blur_kernel={self.blur_kernel})")


def tta_views(x: torch.Tensor) -> list[torch.Tensor]:
    """The five fixed test-time-augmentation views of THESIS 4.1.1, batched on ``x``'s device.

    Args:
        x: images, ``(B, C, H, W)`` (or ``(C, H, W)``), float.

    Returns:
        Five tensors shaped like ``x``, in the order of
        :data:`TTA_VIEW_NAMES`: ``original`` (``x`` itself);
        ``rotate10``: 10 degrees counter-clockwise about the centre (bilinear);
        ``shift_v10px`` / ``shift_h10px``: moved down / right by
        :func:`tta_shift_pixels` pixels (exact); ``crop75``: the
        central 75 % per side resized back (bilinear, antialiased). Pixels from outside the
        image are 0. Down/right is *our choice* (the thesis gives no direction).

    Raises:
        ValueError: ``x`` has fewer than 3 dimensions.
    """
    if x.ndim < 3:
        raise ValueError(f"expected (B, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
    xb = x if x.ndim == 4 else x.unsqueeze(0)
    h, w = xb.shape[-2:]
    dy, dx = min(tta_shift_pixels(h), h), min(tta_shift_pixels(w), w)
    n = len(xb)
    angle = torch.full((n,), TTA_ROTATION, device=xb.device)
    rotated = _warp(xb, _affine_matrix(angle, torch.zeros(n, 2, device=xb.device),
                                       torch.ones(n, device=xb.device), h, w))
    shift_v = torch.zeros_like(xb)
    shift_v[..., dy:, :] = xb[..., :h - dy, :]
    shift_h = torch.zeros_like(xb)
    shift_h[..., :, dx:] = xb[..., :, :w - dx]
    ch, cw = max(1, round(TTA_CROP_FRACTION * h)), max(1, round(TTA_CROP_FRACTION * w))
    top, left = int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))  # torchvision's centre
    crop = nnf.interpolate(xb[..., top:top + ch, left:left + cw], size=(h, w), mode="bilinear",
                           align_corners=False, antialias=True)
    views = [rotated, shift_v, shift_h, crop]
    return [x] + (views if x.ndim == 4 else [v.squeeze(0) for v in views])
