"""2.5D input: context_rows, CacheSlices(context=...), the device augmentation over it, Case1's plumbing."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from pe_utils.data.augment import AffineAugment, tta_views
from pe_utils.data.context import center_channel, context_rows
from pe_utils.data.datasets import make_loader
from pe_utils.data.slices import CacheSlices


def _index(lengths: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Series of the given lengths, rows shuffled (series interleaved), slice_index with gaps."""
    rng = np.random.default_rng(seed)
    rows = [{"SeriesInstanceUID": s, "slice_index": 3 * i + int(rng.integers(0, 3)), "z": float(i)}
            for s, n in lengths.items() for i in range(n)]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _reference(index: pd.DataFrame, k: int) -> np.ndarray:
    """The same table by hand: per series, rows in slice_index order, positions clipped."""
    out = np.empty((len(index), 2 * k + 1), dtype=np.int64)
    for _, group in index.groupby("SeriesInstanceUID"):
        rows = group.sort_values("slice_index").index.to_numpy()
        for p, row in enumerate(rows):
            out[row] = [rows[min(max(p + o, 0), len(rows) - 1)] for o in range(-k, k + 1)]
    return out


# ----------------------------------------------------------------------------- context_rows
@pytest.mark.parametrize("k", [1, 2, 4])
def test_neighbours_never_cross_a_series_and_follow_slice_order(k):
    index = _index({"a": 7, "b": 5, "c": 1}, seed=k)
    table = context_rows(index, k)
    assert table.shape == (len(index), 2 * k + 1) and table.dtype == np.int64
    series = index.SeriesInstanceUID.to_numpy()
    assert (series[table] == series[:, None]).all()                  # never another series
    assert np.array_equal(table[:, k], np.arange(len(index)))        # the row itself in the middle
    si = index.slice_index.to_numpy()[table]
    assert (np.diff(si, axis=1) >= 0).all()                          # in slice order (repeats at the ends)
    assert np.array_equal(table, _reference(index, k))


def test_series_ends_repeat_the_edge_slice():
    index = pd.DataFrame({"SeriesInstanceUID": ["b", "a", "a", "b", "a"], "slice_index": [5, 2, 0, 7, 1]})
    table = context_rows(index, 2)
    assert table[2].tolist() == [2, 2, 2, 4, 1]   # a's first slice (0): [0, 0, 0, 1, 2]
    assert table[1].tolist() == [2, 4, 1, 1, 1]   # a's last slice (2)
    assert table[0].tolist() == [0, 0, 0, 3, 3]   # b: two slices
    assert context_rows(index.iloc[[1]].reset_index(drop=True), 3).tolist() == [[0] * 7]  # a one-slice series


def test_k0_is_the_identity():
    index = _index({"a": 4, "b": 3})
    assert np.array_equal(context_rows(index, 0), np.arange(len(index))[:, None])
    assert context_rows(index.iloc[:0], 2).shape == (0, 5)


def test_refuses_missing_columns_duplicates_and_bad_k():
    index = _index({"a": 4, "b": 3})
    with pytest.raises(ValueError, match="slice_index"):
        context_rows(index.drop(columns="slice_index"), 1)
    dup = pd.concat([index, index.iloc[[0]]], ignore_index=True)
    name, si = index.SeriesInstanceUID[0], index.slice_index[0]
    with pytest.raises(ValueError, match=f"{name} slice_index {si}"):
        context_rows(dup, 1)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="whole number"):
            context_rows(index, bad)


def test_center_channel_takes_the_slice_itself():
    x = torch.arange(2 * 9 * 2 * 2).reshape(2, 9, 2, 2)             # k = 1 over an RGB cache: 3 x 3 channels
    assert torch.equal(center_channel(x, 1), x[:, 3:6])
    assert np.array_equal(center_channel(x.numpy()[0], 1, channels=3), x.numpy()[0, 3:6])
    assert torch.equal(center_channel(x[:, :5], 2), x[:, 2:3])       # gray, k = 2
    assert torch.equal(center_channel(x, 0), x)
    with pytest.raises(ValueError, match="not 5 slices"):
        center_channel(x, 2)


# ----------------------------------------------------------------------------- CacheSlices
@pytest.fixture
def series():
    index = _index({"a": 6, "b": 5, "c": 2}, seed=3)
    n = len(index)
    images = np.random.default_rng(0).integers(0, 256, size=(n, 8, 8), dtype=np.uint8)
    labels = (np.arange(n) % 3 == 0).astype(np.int64)
    return index, images, labels


@pytest.mark.parametrize("rgb", [False, True])
def test_every_item_stacks_its_neighbours_with_itself_in_the_middle(series, rgb):
    index, images, labels = series
    if rgb:
        images = np.stack([images, 255 - images, images // 2], axis=1)   # (N, 3, 8, 8)
    c, k = (3 if rgb else 1), 2
    table = context_rows(index, k)
    items = np.array([4, 0, 11, 4, 7])                                   # repeats allowed
    ds = CacheSlices(images, labels, items, seed=1, context=table)
    assert (ds.k, ds.channels) == (k, 5 * c)
    x, y, keys = ds.__getitems__(list(range(len(items))))
    assert x.dtype == torch.uint8 and x.shape == (len(items), 5 * c, 8, 8)
    for b, row in enumerate(items):
        assert torch.equal(center_channel(x[b], k), torch.from_numpy(images[row]).reshape(c, 8, 8))
        for j, neighbour in enumerate(table[row]):
            assert torch.equal(x[b, j * c:(j + 1) * c], torch.from_numpy(images[neighbour]).reshape(c, 8, 8))
    assert y.tolist() == labels[items].astype(float).tolist()            # the slice's own labels
    assert keys[:, 2].tolist() == list(range(len(items)))
    plain, y0, keys0 = CacheSlices(images, labels, items, seed=1).__getitems__(list(range(len(items))))
    assert torch.equal(center_channel(x, k), plain) and torch.equal(y, y0) and torch.equal(keys, keys0)


def test_k0_table_gives_the_single_slice(series):
    index, images, labels = series
    with_table = CacheSlices(images, labels, None, context=context_rows(index, 0)).__getitems__([3, 1])
    without = CacheSlices(images, labels, None).__getitems__([3, 1])
    assert all(torch.equal(a, b) for a, b in zip(with_table, without))


def test_other_slices_labels_change_no_input(series):
    index, images, labels = series
    table = context_rows(index, 2)
    rng = np.random.default_rng(5)
    items = np.arange(len(images))
    x, y, _ = CacheSlices(images, labels, items, context=table).__getitems__(list(items))
    for item in (0, 6, 12):
        others = np.flatnonzero(items != item)
        shuffled = labels.copy()
        shuffled[others] = 1 - labels[others][rng.permutation(len(others))]  # flipped and shuffled
        x2, y2, _ = CacheSlices(images, shuffled, items, context=table).__getitems__(list(items))
        assert torch.equal(x2, x)                                        # the input never carries labels
        assert y2[item] == y[item]


def test_refuses_a_bad_table(series):
    index, images, labels = series
    table = context_rows(index, 1)
    for bad, match in ((table[:-1], "one row per cache image"), (table[:, :2], "2k \\+ 1"),
                       (table.astype(float), "integers"), (table + len(table), "out of range"),
                       (table[:, [1, 0, 2]], "middle column")):
        with pytest.raises(ValueError, match=match):
            CacheSlices(images, labels, None, context=bad)


def test_a_context_dataset_pickles_and_loads_the_same(series):
    index, images, labels = series
    ds = CacheSlices(images, labels, None, seed=2, context=context_rows(index, 1))
    again = pickle.loads(pickle.dumps(ds))
    assert all(torch.equal(a, b) for a, b in zip(ds.__getitems__([0, 5]), again.__getitems__([0, 5])))
    x, _, _ = next(iter(make_loader(ds, 4, shuffle=True, seed=0)))
    assert x.shape == (4, 3, 8, 8)


# ----------------------------------------------------------------------------- device augmentation
def test_affine_augment_moves_every_channel_of_a_sample_alike():
    rng = np.random.default_rng(0)
    one = torch.from_numpy(rng.random((4, 1, 16, 16), dtype=np.float32))
    keys = torch.tensor([[0, 1, i] for i in range(4)], dtype=torch.int64)
    aug = AffineAugment()
    out = aug(one.expand(-1, 3, -1, -1).contiguous(), keys)          # identical channels
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    # channel j of a stack = the augmented neighbour alone, with the same key
    stack = torch.from_numpy(rng.random((4, 5, 16, 16), dtype=np.float32))
    out = aug(stack, keys)
    for j in range(5):
        assert torch.allclose(out[:, j:j + 1], aug(stack[:, j:j + 1].contiguous(), keys), atol=1e-6)


def test_tta_views_take_a_context_stack():
    x = torch.rand(2, 9, 16, 16)
    views = tta_views(x)
    assert len(views) == 5 and all(v.shape == x.shape for v in views)
    same = torch.rand(2, 1, 16, 16).expand(-1, 3, -1, -1).contiguous()
    assert all(torch.equal(v[:, 0], v[:, 2]) for v in tta_views(same))


# ----------------------------------------------------------------------------- Case1
def test_case1_config_context_setting():
    from pe_utils.experiments.case1 import case1_config

    assert "context" not in case1_config("smoke", "1/3")[0]               # k = 0: settings as before
    assert "context" not in case1_config("smoke", "1/3", context=0)[0]
    assert case1_config("smoke", "1/3", context=2)[0]["context"] == 2
    with pytest.raises(ValueError, match="whole number"):
        case1_config("smoke", "1/3", context=-1)


def test_case1_data_with_context_gives_3c_channels(smoke_cache):
    from pe_utils.experiments.case1 import case1_config, case1_data

    cfg, _, _ = case1_config("smoke", "1/3", context=1)
    data = case1_data(smoke_cache, "1/3", cfg)
    flat, _, _ = case1_config("smoke", "1/3")
    single = case1_data(smoke_cache, "1/3", flat)
    c = single.in_channels
    assert (data.in_channels, data.context, single.context) == (3 * c, 1, 0)
    assert single.context_table is None and data.context_table.shape == (data.n_dataset, 3)
    x, y = next(iter(data.loaders["train"]))
    assert x.shape[1] == 3 * c and x.dtype == torch.float32
    xt, yt = next(iter(data.loaders["test"]))                          # not augmented: comparable
    x1, y1 = next(iter(single.loaders["test"]))
    assert xt.shape[1] == 3 * c and torch.equal(center_channel(xt, 1), x1) and torch.equal(yt, y1)
    for name in ("train", "val", "test"):
        assert data.loaders[name].dataset.context is data.context_table   # one table for every split
    assert data.images("test", [0])[0].shape == single.images("test", [0])[0].shape
