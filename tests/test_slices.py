"""CacheSlices: whole batches of uint8 rows with their keys; DeviceLoader over it."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from pe_utils.data.datasets import CacheDataset, make_loader, set_epoch
from pe_utils.data.slices import CacheSlices, DeviceLoader

N = 12


@pytest.fixture
def gray():
    return np.random.default_rng(0).integers(0, 256, size=(N, 16, 16), dtype=np.uint8)


@pytest.fixture
def labels():
    return (np.arange(N) % 3 == 0).astype(np.int64)


def test_a_batch_holds_the_rows_labels_and_keys_in_order(gray, labels):
    ds = CacheSlices(gray, labels, [9, 2, 5, 2], seed=4)
    ds.set_epoch(3)
    x, y, keys = ds.__getitems__([3, 0, 2])
    assert x.dtype == torch.uint8 and x.shape == (3, 1, 16, 16)
    assert torch.equal(x[:, 0], torch.from_numpy(gray[[2, 9, 5]]))
    assert y.tolist() == [float(labels[i]) for i in (2, 9, 5)]
    assert keys.tolist() == [[4, 3, 3], [4, 3, 0], [4, 3, 2]]  # keyed by position, not cache row
    one = ds[0]
    assert torch.equal(one[0], x[1]) and one[2].tolist() == [4, 3, 0] and len(ds) == 4


def test_device_loader_gives_what_cache_dataset_gives(gray, labels):
    plain = CacheDataset(gray, labels, None, image_size=8)
    loader = DeviceLoader(make_loader(CacheSlices(gray, labels, None), 5, shuffle=False), "cpu", image_size=8)
    x, y = next(iter(loader))
    expected = torch.stack([plain[i][0] for i in range(5)])
    assert torch.allclose(x, expected, atol=1e-6) and torch.equal(y, torch.from_numpy(labels[:5]).float())


def test_rgb_rows_keep_three_channels(labels):
    rgb = np.random.default_rng(1).integers(0, 256, size=(N, 3, 8, 8), dtype=np.uint8)
    x, _, _ = CacheSlices(rgb, labels, None).__getitems__([0, 1])
    assert x.shape == (2, 3, 8, 8)


def test_workers_and_memmap_do_not_change_batches(tmp_path, gray, labels):
    np.save(tmp_path / "images.npy", gray)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    assert len(pickle.dumps(CacheSlices(mapped, labels, None))) < gray.nbytes  # the file name travels

    def epoch_batches(images, workers):
        loader = make_loader(CacheSlices(images, labels, None, seed=1), 4, shuffle=True, seed=0,
                             num_workers=workers)
        set_epoch(loader, 2)
        return list(loader)

    a, b = epoch_batches(gray, 0), epoch_batches(mapped, 1)
    assert len(a) == 3
    for u, v in zip(a, b, strict=True):
        assert all(torch.equal(s, t) for s, t in zip(u, v, strict=True))
    assert {int(k[1]) for batch in a for k in batch[2]} == {2}  # the keys carry the epoch
