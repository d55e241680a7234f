"""Training augmentation preset and the five TTA views, on tiny hand-worked images."""
from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import v2

from pe_utils.data.transforms import (TTA_VIEW_NAMES, eval_transform, train_transform, tta_shift_pixels,
                                 tta_views)


def impulse(size=32, row=10, col=12, batch=2):
    x = torch.zeros(batch, 1, size, size)
    x[:, :, row, col] = 1.0
    return x


def peak(img: torch.Tensor) -> tuple[int, int]:
    """(row, col) of the brightest pixel of a (H, W) image."""
    flat = int(img.argmax())
    return flat // img.shape[-1], flat % img.shape[-1]


def disc(size=32, radius=8.0):
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    c = (size - 1) / 2
    return ((yy - c) ** 2 + (xx - c) ** 2 <= radius**2).float()[None, None]  # (1, 1, H, W)


def test_train_transform_thesis_ranges():
    t = train_transform()
    assert isinstance(t, v2.RandomAffine)
    assert list(t.degrees) == [-10, 10]
    assert tuple(t.translate) == (0.1, 0.1)
    assert tuple(t.scale) == pytest.approx((0.8, 1.2))


@pytest.mark.parametrize("kwargs", [dict(rotation=-1), dict(shift=-0.1), dict(zoom=1.0), dict(shift=1.5)])
def test_train_transform_rejects_bad_ranges(kwargs):
    with pytest.raises(ValueError):
        train_transform(**kwargs)


def test_train_transform_random_but_seeded():
    x = torch.rand(1, 32, 32)
    t = train_transform()
    torch.manual_seed(3)
    a = t(x)
    torch.manual_seed(3)
    b = t(x)
    torch.manual_seed(4)
    c = t(x)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_train_transform_zero_ranges_is_identity():
    x = torch.rand(1, 16, 16)
    assert torch.allclose(train_transform(rotation=0, shift=0, zoom=0)(x), x, atol=1e-6)


def test_eval_transform_keeps_values():
    x = torch.rand(1, 8, 8)
    assert torch.equal(eval_transform()(x), x)


@pytest.mark.parametrize("size,px", [(128, 10), (64, 5), (32, 2), (8, 1)])
def test_shift_pixels_scale_with_size(size, px):
    assert tta_shift_pixels(size) == px


def test_tta_views_names_shapes_and_original():
    x = torch.rand(3, 1, 32, 32)
    views = tta_views(x)
    assert len(views) == len(TTA_VIEW_NAMES) == 5
    assert TTA_VIEW_NAMES[0] == "original" and views[0] is x
    assert all(v.shape == x.shape and v.dtype == x.dtype for v in views)
    assert not any(torch.equal(v, x) for v in views[1:])


def test_tta_shifts_move_an_impulse():
    x = impulse(32, row=10, col=12)
    _, _, shift_v, shift_h, _ = tta_views(x)
    d = tta_shift_pixels(32)
    for b in range(2):
        assert peak(shift_v[b, 0]) == (10 + d, 12)  # down by d
        assert peak(shift_h[b, 0]) == (10, 12 + d)  # right by d
        # an integer shift moves the pixel intact
        assert float(shift_v[b, 0].sum()) == 1.0 and float(shift_h[b, 0].sum()) == 1.0


def test_tta_shift_at_thesis_size_is_10px():
    x = impulse(128, row=60, col=60, batch=1)
    assert peak(tta_views(x)[2][0, 0]) == (70, 60)


def test_tta_rotation_moves_an_off_centre_impulse_counter_clockwise():
    x = impulse(33, row=6, col=16, batch=1)  # 10 px above the centre (16, 16)
    rotated = tta_views(x)[1][0, 0]
    # counter-clockwise by 10 degrees: (dx, dy_up) = (0, 10) -> (-10 sin 10, 10 cos 10)
    r_expect = 16 - 10 * math.cos(math.radians(10))
    c_expect = 16 - 10 * math.sin(math.radians(10))
    rows, cols = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    mass = rotated.sum()
    assert float((rotated * rows).sum() / mass) == pytest.approx(r_expect, abs=0.3)
    assert float((rotated * cols).sum() / mass) == pytest.approx(c_expect, abs=0.3)


def test_tta_rotation_of_centred_disc_is_nearly_unchanged():
    x = disc(32, 8.0)
    rotated = tta_views(x)[1]
    assert (rotated - x).abs().mean() < 0.02
    assert float(rotated.sum()) == pytest.approx(float(x.sum()), rel=0.02)


def test_tta_crop75_of_constant_image_is_constant():
    x = torch.full((2, 1, 32, 32), 0.4)
    crop = tta_views(x)[4]
    assert torch.allclose(crop, x, atol=1e-6)


def test_tta_crop75_enlarges_about_the_centre():
    x = disc(32, 6.0)
    crop = tta_views(x)[4]
    # a 75 % crop resized back scales distances by 4/3: area by 16/9
    assert float(crop.sum() / x.sum()) == pytest.approx(16 / 9, rel=0.08)
    assert float(crop[0, 0, 14:18, 14:18].min()) == pytest.approx(1.0)  # the centre stays inside
    assert float(crop[0, 0, :2].max()) == 0.0 and float(crop[0, 0, :, :2].max()) == 0.0


def test_tta_views_batch_equals_one_by_one():
    x = torch.rand(3, 1, 16, 16)
    batched = tta_views(x)
    for b in range(3):
        single = tta_views(x[b:b + 1])
        for v_all, v_one in zip(batched, single, strict=True):
            assert torch.allclose(v_all[b:b + 1], v_one, atol=1e-6)


def test_tta_views_rgb_and_single_image():
    assert all(v.shape == (3, 16, 16) for v in tta_views(torch.rand(3, 16, 16)))
    with pytest.raises(ValueError):
        tta_views(torch.rand(16, 16))


def test_tta_names_keep_working_from_transforms():
    from pe_utils.data import augment, transforms

    assert transforms.tta_views is augment.tta_views and transforms.TTA_VIEW_NAMES is augment.TTA_VIEW_NAMES
