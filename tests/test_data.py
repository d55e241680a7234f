"""CacheDataset and make_loader: values, resizing, reproducible per-epoch order and augmentation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pe_utils.data.cache import load_cache
from pe_utils.data.datasets import CacheDataset, EpochSampler, make_loader, sample_seed, set_epoch
from pe_utils.data.splits import case1_split
from pe_utils.data.transforms import train_transform

N = 12


@pytest.fixture
def gray():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(N, 16, 16), dtype=np.uint8)


@pytest.fixture
def labels():
    return (np.arange(N) % 3 == 0).astype(np.int64)


def test_item_is_uint8_over_255(gray, labels):
    ds = CacheDataset(gray, labels, [3, 5])
    x, y = ds[1]
    assert x.dtype == torch.float32 and x.shape == (1, 16, 16)
    assert torch.equal(x[0], torch.from_numpy(gray[5]).float() / 255)
    assert y.dtype == torch.float32 and float(y) == labels[5]
    assert len(ds) == 2 and ds.labels.tolist() == [labels[3], labels[5]]


def test_rgb_cache_items_have_three_channels(labels):
    rgb = np.random.default_rng(1).integers(0, 256, size=(N, 3, 8, 8), dtype=np.uint8)
    x, _ = CacheDataset(rgb, labels, None, image_size=4)[0]
    assert x.shape == (3, 4, 4)


def test_memmap_cache_works(tmp_path, gray, labels):
    np.save(tmp_path / "images.npy", gray)
    images = np.load(tmp_path / "images.npy", mmap_mode="r")
    x, _ = CacheDataset(images, labels, [7])[0]
    assert torch.equal(x[0], torch.from_numpy(gray[7]).float() / 255)


def test_pickling_a_memmap_dataset_reopens_the_file(tmp_path, gray, labels):
    import pickle

    np.save(tmp_path / "images.npy", gray)
    ds = CacheDataset(np.load(tmp_path / "images.npy", mmap_mode="r"), labels, [1, 7], seed=3)
    blob = pickle.dumps(ds)
    assert len(blob) < gray.nbytes  # the file name travels, not the images
    copy = pickle.loads(blob)
    assert isinstance(copy.images, np.memmap) and copy.seed == 3
    assert torch.equal(copy[1][0], ds[1][0])
    # an in-memory array (or a slice of a map) is pickled as data, as before
    sliced = CacheDataset(np.load(tmp_path / "images.npy", mmap_mode="r")[2:], labels[2:], [0])
    assert torch.equal(pickle.loads(pickle.dumps(sliced))[0][0], sliced[0][0])


def test_resize_is_area_average(gray, labels):
    x, _ = CacheDataset(gray, labels, [0], image_size=8)[0]
    expect = torch.from_numpy(gray[0]).float().div(255).reshape(8, 2, 8, 2).mean(dim=(1, 3))
    assert x.shape == (1, 8, 8) and torch.allclose(x[0], expect, atol=1e-6)


def test_resize_up_is_bilinear_and_bounded(gray, labels):
    x, _ = CacheDataset(gray, labels, [0], image_size=20)[0]
    assert x.shape == (1, 20, 20) and 0 <= float(x.min()) and float(x.max()) <= 1


@pytest.mark.parametrize("bad", [
    dict(labels=np.zeros(N - 1)), dict(indices=[N]), dict(indices=[-1]),
    dict(labels=np.full(N, 2)), dict(image_size=0), dict(images=np.zeros((N, 2, 4, 4), np.uint8)),
])
def test_bad_inputs_raise(gray, labels, bad):
    kwargs = dict(images=gray, labels=labels, indices=[0, 1])
    kwargs.update(bad)
    with pytest.raises(ValueError):
        CacheDataset(**kwargs)


def test_augmentation_depends_on_seed_epoch_index_only(gray, labels):
    ds = CacheDataset(gray, labels, [2, 4, 6], transform=train_transform(), seed=7)
    a = ds[1][0]
    torch.manual_seed(123)  # the global state must not matter
    ds[0], ds[2]           # nor the other items loaded in between
    assert torch.equal(ds[1][0], a)
    ds.set_epoch(1)
    assert not torch.equal(ds[1][0], a)
    ds.set_epoch(0)
    assert torch.equal(ds[1][0], a)
    other_seed = CacheDataset(gray, labels, [2, 4, 6], transform=train_transform(), seed=8)
    assert not torch.equal(other_seed[1][0], a)
    # keyed by the position: repeated indices (oversampling) are augmented differently
    twice = CacheDataset(gray, labels, [4, 4], transform=train_transform(), seed=7)
    assert not torch.equal(twice[0][0], twice[1][0])


def test_augmentation_leaves_global_rng_alone(gray, labels):
    ds = CacheDataset(gray, labels, None, transform=train_transform())
    torch.manual_seed(0)
    expect = torch.rand(3)
    torch.manual_seed(0)
    ds[0], ds[1]
    assert torch.equal(torch.rand(3), expect)


def test_sample_seed_spreads():
    seeds = {sample_seed(s, e, i) for s in range(3) for e in range(3) for i in range(50)}
    assert len(seeds) == 450 and all(0 <= s < 2**63 for s in seeds)


def test_epoch_sampler_is_a_permutation_per_epoch():
    s = EpochSampler(20, shuffle=True, seed=3)
    first = list(s)
    assert sorted(first) == list(range(20)) and list(s) == first
    s.set_epoch(1)
    second = list(s)
    assert sorted(second) == list(range(20)) and second != first
    s.set_epoch(0)
    assert list(s) == first
    assert list(EpochSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]


def batches(loader, epoch):
    set_epoch(loader, epoch)
    return [(x.clone(), y.clone()) for x, y in loader]


def same(a, b):
    return len(a) == len(b) and all(torch.equal(x1, x2) and torch.equal(y1, y2)
                                    for (x1, y1), (x2, y2) in zip(a, b, strict=True))


def test_loader_is_reproducible_per_epoch(gray, labels):
    ds = CacheDataset(gray, labels, None, transform=train_transform(), image_size=8, seed=0)
    loader = make_loader(ds, batch_size=4, shuffle=True, seed=0)
    e0, e1 = batches(loader, 0), batches(loader, 1)
    assert len(e0) == 3 and e0[0][0].shape == (4, 1, 8, 8) and e0[0][1].shape == (4,)
    assert not same(e0, e1)
    assert same(batches(loader, 0), e0)  # epoch 0 again, after epoch 1
    fresh = make_loader(CacheDataset(gray, labels, None, transform=train_transform(), image_size=8, seed=0),
                        batch_size=4, shuffle=True, seed=0)
    assert same(batches(fresh, 1), e1)   # epoch 1 without replaying epoch 0


def test_loader_workers_do_not_change_batches(gray, labels):
    def make(workers):
        ds = CacheDataset(gray, labels, None, transform=train_transform(), image_size=8, seed=0)
        return make_loader(ds, batch_size=4, shuffle=True, seed=0, num_workers=workers)

    assert same(batches(make(0), 1), batches(make(2), 1))


def test_persistent_workers_follow_set_epoch(tmp_path, gray, labels):
    """The same worker processes serve every epoch: set_epoch must still reach them."""
    from pe_utils.data.slices import CacheSlices

    np.save(tmp_path / "images.npy", gray)
    images = np.load(tmp_path / "images.npy", mmap_mode="r")  # as the cache: a memory map

    def make(workers):
        ds = CacheDataset(images, labels, None, transform=train_transform(), image_size=8, seed=0)
        return make_loader(ds, batch_size=4, shuffle=True, seed=0, num_workers=workers)

    inline, workers = make(0), make(2)
    assert workers.persistent_workers and not inline.persistent_workers
    expect = [batches(inline, e) for e in (0, 1, 0)]
    got = [batches(workers, e) for e in (0, 1, 0)]
    assert not same(expect[0], expect[1])
    assert all(same(e, g) for e, g in zip(expect, got, strict=True))
    assert workers._iterator is not None  # one set of workers, kept between the epochs

    # the device path's slices carry the epoch in their keys
    slices = make_loader(CacheSlices(images, labels, None, seed=3), batch_size=4, shuffle=True, seed=0,
                         num_workers=2)
    for epoch in (0, 1, 2):
        set_epoch(slices, epoch)
        keys = torch.cat([k for _, _, k in slices])
        assert keys[:, 1].tolist() == [epoch] * N and (keys[:, 0] == 3).all()


def test_loader_options(gray, labels):
    ds = CacheDataset(gray, labels, None)
    loader = make_loader(ds, batch_size=5, shuffle=False, seed=0, drop_last=True)
    assert not loader.pin_memory and len(loader) == 2
    assert torch.equal(next(iter(loader))[1], torch.from_numpy(labels[:5]).float())
    with pytest.raises(ValueError):
        make_loader(ds, batch_size=0, shuffle=False, seed=0)


def test_cache_and_case1_split_to_loaders(smoke_cache):
    """The notebook path: cache + Case1 split -> datasets -> loaders."""
    cache = load_cache(smoke_cache)
    split = case1_split(cache.index, "1/2", seed=0)
    y = cache.index["pe_present_on_image"].to_numpy()
    train = CacheDataset(cache.images, y, np.flatnonzero(split == "train"),
                         transform=train_transform(), image_size=32, seed=0)
    loader = make_loader(train, batch_size=4, shuffle=True, seed=0)
    x, yb = next(iter(loader))
    assert x.shape == (4, 1, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert set(yb.tolist()) <= {0.0, 1.0}
    assert len(train) == int((split == "train").sum())
