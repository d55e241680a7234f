"""Batched augmentation on the device: per-sample keyed parameters, TTA views, SimCLR pairs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as nnf
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from pe_utils.data.augment import (TTA_VIEW_NAMES, AffineAugment, DeviceLoader, SimCLRViews,
                                   tta_shift_pixels, tta_views)
from pe_utils.data.datasets import make_loader
from pe_utils.data.slices import CacheSlices


def keys_of(index, seed=0, epoch=0) -> torch.Tensor:
    index = torch.as_tensor(index, dtype=torch.int64)
    return torch.stack([torch.full_like(index, seed), torch.full_like(index, epoch), index], dim=1)


def smooth(batch=4, size=32, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return nnf.avg_pool2d(torch.rand(batch, 1, size, size, generator=g), 5, 1, 2)


def reference_tta_views(x):
    """The former per-call torchvision implementation (pe_utils.data.transforms.tta_views
    before the device path), kept here as the reference."""
    h, w = x.shape[-2:]
    dy, dx = tta_shift_pixels(h), tta_shift_pixels(w)
    bilinear, nearest = v2.InterpolationMode.BILINEAR, v2.InterpolationMode.NEAREST
    rotated = F.rotate(x, 10.0, interpolation=bilinear, fill=0.0)
    shift_v = F.affine(x, angle=0.0, translate=[0, dy], scale=1.0, shear=[0.0, 0.0], interpolation=nearest, fill=0.0)
    shift_h = F.affine(x, angle=0.0, translate=[dx, 0], scale=1.0, shear=[0.0, 0.0], interpolation=nearest, fill=0.0)
    crop = F.center_crop(x, [max(1, round(0.75 * h)), max(1, round(0.75 * w))])
    crop = F.resize(crop, [h, w], interpolation=bilinear, antialias=True)
    return [x, rotated, shift_v, shift_h, crop]


def test_affine_parameters_within_thesis_ranges_and_spread():
    p = AffineAugment().params(keys_of(range(4000)))
    assert p["angle"].abs().max() <= 10 and p["angle"].min() < -9.5 and p["angle"].max() > 9.5
    assert p["shift"].abs().max() <= 0.1 and p["shift"].min() < -0.095 and p["shift"].max() > 0.095
    assert p["scale"].min() >= 0.8 and p["scale"].max() <= 1.2
    assert p["scale"].min() < 0.81 and p["scale"].max() > 1.19
    # roughly uniform, independent draws: mean ~0, dx and dy uncorrelated
    assert abs(float(p["angle"].mean())) < 0.5
    assert abs(float(np.corrcoef(p["shift"][:, 0], p["shift"][:, 1])[0, 1])) < 0.1


def test_affine_parameters_per_sample_and_keyed():
    aug = AffineAugment()
    p = aug.params(keys_of(range(8)))
    assert len(set(p["angle"].tolist())) == 8  # every sample its own draw
    # the same (seed, epoch, index) in another batch, at another position: same parameters
    other = aug.params(keys_of([5, 100, 3, 7]))
    assert other["angle"][0] == p["angle"][5] and other["angle"][2] == p["angle"][3]
    assert torch.equal(other["shift"][3], p["shift"][7])
    # another epoch or seed: other parameters
    assert aug.params(keys_of(range(8), epoch=1))["angle"][0] != p["angle"][0]
    assert aug.params(keys_of(range(8), seed=1))["angle"][0] != p["angle"][0]


def test_affine_image_independent_of_batch_composition():
    x = smooth(6)
    aug = AffineAugment()
    whole = aug(x, keys_of(range(6)))
    perm = [4, 1, 5]
    part = aug(x[perm], keys_of(perm))
    assert torch.allclose(part, whole[perm], atol=1e-6)
    assert not torch.allclose(whole[0], whole[1])


def test_affine_zero_ranges_is_identity_and_bad_ranges_raise():
    x = smooth(3)
    assert torch.allclose(AffineAugment(0, 0, 0)(x, keys_of(range(3))), x, atol=1e-5)
    for kwargs in (dict(rotation=-1), dict(zoom=1.0), dict(shift=1.5)):
        with pytest.raises(ValueError):
            AffineAugment(**kwargs)


def test_affine_shift_moves_an_impulse_by_its_drawn_shift():
    aug = AffineAugment(rotation=0, shift=0.2, zoom=0)
    x = torch.zeros(3, 1, 41, 41)
    x[:, :, 20, 20] = 1.0
    out = aug(x, keys_of(range(3)))
    shift = aug.params(keys_of(range(3)))["shift"] * 41     # (dx, dy) pixels
    rows, cols = torch.meshgrid(torch.arange(41.0), torch.arange(41.0), indexing="ij")
    for b in range(3):
        m = out[b, 0].sum()
        assert float((out[b, 0] * cols).sum() / m) == pytest.approx(20 + float(shift[b, 0]), abs=0.05)
        assert float((out[b, 0] * rows).sum() / m) == pytest.approx(20 + float(shift[b, 1]), abs=0.05)


def test_tta_views_match_the_former_per_call_transforms():
    x = smooth(4, 64)
    new, old = tta_views(x), reference_tta_views(x)
    assert len(new) == len(TTA_VIEW_NAMES) == 5
    for i in (0, 2, 3, 4):  # original, shifts, crop: the same numbers
        assert torch.allclose(new[i], old[i], atol=1e-5), TTA_VIEW_NAMES[i]
    # the rotation: the same inside; at the corners torchvision's fill mask differs slightly
    assert torch.allclose(new[1][..., 12:-12, 12:-12], old[1][..., 12:-12, 12:-12], atol=1e-4)
    assert float((new[1] - old[1]).abs().mean()) < 0.005


def test_simclr_defaults_and_parameter_ranges():
    views = SimCLRViews()
    assert views.crop_scale == (0.2, 1.0) and views.blur_sigma == (0.1, 2.0)
    p = views.params(keys_of(range(4000)))
    x0, y0, cw, ch = p["box"].T
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x0 + cw <= 1 + 1e-6).all() and (y0 + ch <= 1 + 1e-6).all()
    assert float((cw * ch).min()) >= 0.2 * 0.75 - 1e-6  # clipped crops only lose area
    on = p["sigma"] > 0
    assert 0.45 < float(on.float().mean()) < 0.55     # blur probability 0.5
    assert p["sigma"][on].min() >= 0.1 and p["sigma"][on].max() <= 2.0
    jitter = p["contrast"] != 1
    assert 0.75 < float(jitter.float().mean()) < 0.85  # jitter probability 0.8
    assert p["contrast"].min() >= 0.6 and p["contrast"].max() <= 1.4
    assert p["brightness"].min() >= 0.6 and p["brightness"].max() <= 1.4


def test_simclr_views_differ_and_are_keyed():
    x = smooth(5, 32)
    views = SimCLRViews()
    v1, v2_ = views(x, keys_of(range(5)))
    assert v1.shape == v2_.shape == x.shape
    assert float(v1.min()) >= 0 and float(v1.max()) <= 1
    for b in range(5):
        assert not torch.allclose(v1[b], v2_[b], atol=1e-3)  # the two views of one image differ
    again1, again2 = views(x[[3, 0]], keys_of([3, 0]))
    assert torch.allclose(again1, v1[[3, 0]], atol=1e-6) and torch.allclose(again2, v2_[[3, 0]], atol=1e-6)


def test_simclr_rejects_bad_settings():
    for kwargs in (dict(crop_scale=(0.0, 1.0)), dict(crop_scale=(0.8, 0.5)), dict(contrast=1.2),
                   dict(blur_probability=1.5), dict(blur_sigma=(0.0, 1.0))):
        with pytest.raises(ValueError):
            SimCLRViews(**kwargs)


@pytest.fixture
def slices_loader():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 16, 16), dtype=np.uint8)
    labels = np.array([0, 1] * 5)
    ds = CacheSlices(images, labels, np.arange(2, 10), seed=3)
    return images, make_loader(ds, batch_size=3, shuffle=True, seed=0)


def test_device_loader_pairs_have_no_labels(slices_loader):
    _, loader = slices_loader
    dl = DeviceLoader(loader, "cpu", pairs=SimCLRViews())
    batches = list(dl)
    assert len(batches) == len(dl) == 3
    for batch in batches:
        assert isinstance(batch, tuple) and len(batch) == 2
        assert batch[0].shape == batch[1].shape and batch[0].dtype == torch.float32


def test_device_loader_augments_by_key_and_epoch(slices_loader):
    images, loader = slices_loader
    aug = AffineAugment()
    dl = DeviceLoader(loader, "cpu", augment=aug, image_size=8)
    assert dl.dataset is loader.dataset and dl.sampler is loader.sampler and dl.batch_size == 3
    dl.set_epoch(2)
    assert loader.dataset.epoch == 2 and loader.sampler.epoch == 2
    order = list(loader.sampler)
    xs, ys = zip(*dl)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (8, 1, 8, 8) and y.tolist() == [float(loader.dataset.labels[i]) for i in order]
    plain = torch.from_numpy(images[2:][order].astype(np.float32) / 255)[:, None]
    expected = aug(nnf.interpolate(plain, size=(8, 8), mode="area"), keys_of(order, seed=3, epoch=2))
    assert torch.allclose(x, expected, atol=1e-6)


def test_device_loader_without_augmentation_and_errors(slices_loader):
    images, loader = slices_loader
    x, y = next(iter(DeviceLoader(loader, "cpu")))
    first = list(loader.sampler)[:3]
    assert torch.equal(x, torch.from_numpy(images[2:][first].astype(np.float32) / 255)[:, None])
    with pytest.raises(ValueError):
        DeviceLoader(loader, "cpu", augment=AffineAugment(), pairs=SimCLRViews())
    no_keys = [(torch.zeros(2, 1, 8, 8), torch.zeros(2))]
    with pytest.raises(ValueError, match="keys"):
        next(iter(DeviceLoader(no_keys, "cpu", augment=AffineAugment())))


def test_rotation_of_tta_is_counter_clockwise():
    x = torch.zeros(1, 1, 33, 33)
    x[0, 0, 6, 16] = 1.0  # 10 px above the centre
    r = tta_views(x)[1][0, 0]
    rows, cols = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    m = r.sum()
    assert float((r * cols).sum() / m) == pytest.approx(16 - 10 * math.sin(math.radians(10)), abs=0.3)
    assert float((r * rows).sum() / m) == pytest.approx(16 - 10 * math.cos(math.radians(10)), abs=0.3)
