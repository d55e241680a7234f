"""The fixed crop before the resize: validated, deterministic, the same box on every path."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as nnf

from pe_utils.data.augment import AffineAugment, tta_views
from pe_utils.data.crop import apply_crop, check_crop, crop_pixels
from pe_utils.data.datasets import CacheDataset, make_loader, set_epoch
from pe_utils.data.slices import CacheSlices, DeviceLoader
from pe_utils.profiles import DEMO_CROP

N, SIDE = 10, 32
BOX = (0.125, 0.125, 0.75, 0.75)


@pytest.fixture
def gray():
    return np.random.default_rng(0).integers(0, 256, size=(N, SIDE, SIDE), dtype=np.uint8)


@pytest.fixture
def labels():
    return (np.arange(N) % 2).astype(np.int64)


@pytest.mark.parametrize("bad", [(0.1, 0.1, 0.5), (0, 0, 0, 1), (0, 0, 1.2, 1), (0.5, 0, 0.6, 1),
                                 (0, 0.3, 1, 0.8), (-0.1, 0, 0.5, 0.5), "centre", 3])
def test_a_bad_box_is_refused_with_its_value(bad):
    with pytest.raises(ValueError, match="crop"):
        check_crop(bad)


def test_pixels_of_the_demo_box_and_the_whole_slice():
    assert crop_pixels(BOX, 128, 128) == (16, 16, 96, 96)
    # the demo's box: rows 17-96 and columns 27-106 of 128 hold every demo clot (generator 2.2: rows 35-68, columns 33-91)
    assert crop_pixels(DEMO_CROP, 128, 128) == (17, 27, 80, 80)
    assert crop_pixels(None, 128, 100) == (0, 0, 128, 100)
    assert crop_pixels((0.2, 0.05, 0.6, 0.9), 128, 128) == (26, 6, 77, 115)
    assert crop_pixels((0, 0, 1, 1), 7, 9) == (0, 0, 7, 9)
    top, left, h, w = crop_pixels((0.999, 0.999, 0.001, 0.001), 16, 16)  # never empty, never outside
    assert h >= 1 and w >= 1 and top + h <= 16 and left + w <= 16


def test_apply_crop_is_a_view_of_the_box_and_none_is_the_identity():
    x = torch.arange(2 * 1 * 8 * 8).reshape(2, 1, 8, 8)
    y = apply_crop(x, (0.25, 0.5, 0.5, 0.5))
    assert y.shape == (2, 1, 4, 4) and torch.equal(y, x[..., 2:6, 4:8])
    assert y.data_ptr() == x[..., 2:, 4:].data_ptr()  # no copy
    assert apply_crop(x, None) is x


def _expected(gray, rows, size, crop):
    x = torch.from_numpy(gray[rows]).float().div(255).unsqueeze(1)
    return nnf.interpolate(apply_crop(x, crop), size=(size, size), mode="area")


def test_device_batches_and_gallery_images_see_the_same_box(gray, labels):
    loader = DeviceLoader(make_loader(CacheSlices(gray, labels, None), 4, shuffle=False), "cpu",
                          image_size=8, crop=BOX)
    x, _ = next(iter(loader))
    assert torch.allclose(x, _expected(gray, range(4), 8, BOX), atol=1e-6)
    gallery = CacheDataset(gray, labels, None, image_size=8, crop=BOX)
    assert torch.allclose(torch.stack([gallery[i][0] for i in range(4)]), x, atol=1e-6)
    # without a crop the whole slice is resized: another image
    whole, _ = next(iter(DeviceLoader(make_loader(CacheSlices(gray, labels, None), 4, shuffle=False),
                                      "cpu", image_size=8)))
    assert not torch.allclose(whole, x)


def test_training_augments_the_cropped_image_deterministically(gray, labels):
    def batch():
        loader = DeviceLoader(make_loader(CacheSlices(gray, labels, None, seed=3), 5, shuffle=True, seed=3),
                              "cpu", augment=AffineAugment(), image_size=12, crop=BOX)
        set_epoch(loader, 1)
        return next(iter(loader))

    (x1, y1), (x2, y2) = batch(), batch()
    assert x1.shape == (5, 1, 12, 12) and torch.equal(x1, x2) and torch.equal(y1, y2)


def test_tta_views_are_made_from_the_cropped_batch(gray, labels):
    loader = DeviceLoader(make_loader(CacheSlices(gray, labels, None), N, shuffle=False), "cpu",
                          image_size=SIDE, crop=BOX)
    x, _ = next(iter(loader))
    assert x.shape[-2:] == (SIDE, SIDE)
    # the original view is the cropped slice enlarged to the network's side, never the whole slice
    views = tta_views(x)
    assert torch.equal(views[0], x)
    assert torch.allclose(x, nnf.interpolate(apply_crop(torch.from_numpy(gray).float().div(255).unsqueeze(1), BOX),
                                             size=(SIDE, SIDE), mode="bilinear", align_corners=False), atol=1e-6)


def test_case1_and_case3_loaders_take_the_profiles_box(tmp_path, gray, labels, monkeypatch):
    from pe_utils.experiments.pretrain import pretrain_loader

    class Cache:  # what the loaders read of a cache
        images = np.repeat(gray, 4, axis=0)

    cfg = dict(image_size=8, batch_size=8, seed=0, num_workers=0, crop=BOX)
    loader = pretrain_loader(Cache(), cfg)
    assert loader.crop == BOX
    v1, v2 = next(iter(loader))
    assert v1.shape == (8, 1, 8, 8) and v2.shape == v1.shape
    assert pretrain_loader(Cache(), {**cfg, "crop": None}).crop is None
