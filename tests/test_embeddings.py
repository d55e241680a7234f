"""Representations, 2-D maps, clustering measures and the linear probe (pe_utils.evaluate.embeddings)."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def _blobs(n_groups=4, per=20, dim=64, spread=0.05, seed=0):
    """Well-separated groups: each a random direction plus small noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_groups, dim))
    x = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(n_groups * per, dim))
    return x.astype(np.float32), np.repeat(np.arange(n_groups), per)


def test_clustering_scores_separated_blobs_are_perfect():
    from pe_utils.evaluate.embeddings import clustering_scores

    x, groups = _blobs()
    s = clustering_scores(x, groups)
    assert s["silhouette"] > 0.9
    assert s["knn_accuracy"] == 1.0
    assert s["chance"] == 0.25 and s["k"] == 5


def test_clustering_scores_random_features_are_near_chance():
    from pe_utils.evaluate.embeddings import clustering_scores

    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 64))
    groups = np.repeat(np.arange(4), 20)
    s = clustering_scores(x, groups)
    assert abs(s["silhouette"]) < 0.05
    assert s["knn_accuracy"] < 0.45  # chance 0.25; 80 rows leave some room


def test_clustering_scores_refuses_a_group_of_one():
    from pe_utils.evaluate.embeddings import clustering_scores

    with pytest.raises(ValueError, match="groups"):
        clustering_scores(np.zeros((3, 2)), [0, 0, 1])
    with pytest.raises(ValueError, match="rows"):
        clustering_scores(np.zeros((3, 2)), [0, 1])


def test_linear_probe_auc_separable_and_one_class():
    from pe_utils.evaluate.embeddings import linear_probe_auc

    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(int)
    x = rng.normal(size=(400, 32))
    x[:, 3] += 3.0 * y  # one informative feature
    auc = linear_probe_auc(x[:200], y[:200], x[200:], y[200:])
    assert auc > 0.95
    noise = linear_probe_auc(rng.normal(size=(200, 32)), y[:200], rng.normal(size=(200, 32)), y[200:])
    assert 0.3 < noise < 0.7
    assert linear_probe_auc(x[:200], np.zeros(200), x[200:], y[200:]) is None
    with pytest.raises(ValueError, match="width"):
        linear_probe_auc(x[:200], y[:200], x[200:, :5], y[200:])


@pytest.mark.parametrize("method", ["tsne", "umap"])
def test_reduce_2d_keeps_separated_groups_apart_and_is_seeded(method):
    from pe_utils.evaluate.embeddings import clustering_scores, reduce_2d

    x, groups = _blobs(per=10)
    xy = reduce_2d(x, method, seed=0)
    assert xy.shape == (40, 2) and np.isfinite(xy).all()
    assert clustering_scores(xy, groups)["knn_accuracy"] == 1.0
    np.testing.assert_allclose(reduce_2d(x, method, seed=0), xy, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="method"):
        reduce_2d(x, "pca")


def test_representations_match_simclr_features_at_every_layer():
    from pe_utils.evaluate.embeddings import representations
    from pe_utils.learn import build_simclr

    torch.manual_seed(0)
    model = build_simclr("resnet18", in_channels=1, hidden=64, out_dim=16).eval()
    x = torch.rand(5, 1, 32, 32)
    reps = representations(model, x, batch_size=2)
    assert {k: v.shape for k, v in reps.items()} == {"encoder": (5, 512), "head1": (5, 64), "head2": (5, 16)}
    with torch.no_grad():
        for layer, value in reps.items():
            np.testing.assert_allclose(value, model.features(x, layer=layer).numpy(), rtol=1e-4, atol=1e-5)


def test_augmented_views_are_seeded_grouped_and_differ():
    from pe_utils.evaluate.embeddings import augmented_views

    images = torch.rand(3, 1, 32, 32)
    x, groups = augmented_views(images, n_views=4, seed=7)
    assert x.shape == (12, 1, 32, 32) and groups.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    again, _ = augmented_views(images, n_views=4, seed=7)
    assert torch.equal(x, again)
    other, _ = augmented_views(images, n_views=4, seed=8)
    assert not torch.equal(x, other)
    assert not torch.equal(x[0], x[1])  # two views of one slice are different pictures
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    with pytest.raises(ValueError, match="n_views"):
        augmented_views(images, n_views=1)
