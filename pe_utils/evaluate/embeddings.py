"""What a contrastive encoder learned, measured (THESIS 6.2.3, Figs 6.11-6.12, and beyond).

The thesis pictures the representations of four slices, each augmented twenty times, with
t-SNE before and after pretraining and at three layers, and reads the pictures by eye (it calls
t-SNE "not an accurate efficiency metric"). Here the pictures come with numbers measured in the
full-dimensional space, not in the 2-D map:

- :func:`augmented_views`: ``n_views`` contrastive views of each slice (the pretraining's own
  :class:`pe_utils.SimCLRViews`, each view's parameters drawn from the key ``(seed, view, slice)``);
- :func:`representations`: the encoder output and the projection head's first and second
  layers of a :class:`pe_utils.SimCLRModel` (one backbone pass for all three);
- :func:`reduce_2d`: t-SNE (scikit-learn) or UMAP (umap-learn) to two dimensions, seeded;
- :func:`clustering_scores`: silhouette of the source-slice groups and the leave-one-out
  k-nearest-neighbour accuracy of recovering a view's source slice (chance: 1 / groups);
- :func:`linear_probe_auc`: logistic regression on frozen features of labelled training
  slices, its test AUC: which layer carries the label (the question of THESIS 4.3).

Distances are cosine distances (our choice): NT-Xent compares views by cosine similarity, so
that is the geometry pretraining shapes; a vector's length carries nothing it was trained for.
scikit-learn and umap-learn are imported inside the functions that use them.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch

__all__ = ["augmented_views", "representations", "reduce_2d", "clustering_scores", "linear_probe_auc",
           "REDUCTIONS", "DISTANCE"]

#: the 2-D reductions :func:`reduce_2d` knows
REDUCTIONS = ("tsne", "umap")
#: the distance of every measure here (module docstring)
DISTANCE = "cosine"
#: up to this many points t-SNE is exact (the thesis's 80 points: no Barnes-Hut approximation)
EXACT_TSNE_MAX = 1000


def augmented_views(images: torch.Tensor, n_views: int = 20, seed: int = 0, views=None) -> tuple[torch.Tensor, np.ndarray]:
    """``n_views`` random contrastive views of each image (THESIS 6.2.3: four slices, twenty each).

    Args:
        images: ``(S, C, H, W)`` float in [0, 1], at the size the encoder was pretrained on.
        n_views: views per image (20 in the thesis).
        seed: the views' seed: view ``v`` of image ``s`` uses key ``(seed, v, s)`` of
            :class:`pe_utils.SimCLRViews` (stream 0), so the same call gives the same views.
        views: the augmentation (default: ``SimCLRViews()``, the pretraining's).

    Returns:
        ``(x, groups)``: ``x`` ``(S * n_views, C, H, W)`` ordered image by image, and
        ``groups`` ``(S * n_views,)`` int, the source image of each view.

    Raises:
        ValueError: not a 4-D batch, or ``n_views < 2``.
    """
    from ..data import SimCLRViews

    if images.ndim != 4:
        raise ValueError(f"images must be (S, C, H, W), got shape {tuple(images.shape)}")
    if n_views < 2:
        raise ValueError(f"n_views must be >= 2 (a group of one view has no neighbours), got {n_views}")
    views = SimCLRViews() if views is None else views
    s = len(images)
    groups = np.repeat(np.arange(s), n_views)
    view_of = np.tile(np.arange(n_views), s)
    keys = torch.as_tensor(np.stack([np.full(s * n_views, int(seed)), view_of, groups], axis=1), dtype=torch.int64)
    x = images.float().repeat_interleave(n_views, dim=0)
    return views.view(x, keys, 0), groups


@torch.no_grad()
def representations(model: torch.nn.Module, images: torch.Tensor | np.ndarray,
                    layers: Sequence[str] = ("encoder", "head1", "head2"), batch_size: int = 256,
                    device: torch.device | str = "cpu") -> dict[str, np.ndarray]:
    """The representation of each image at each layer of a SimCLR network (eval mode).

    Args:
        model: a :class:`pe_utils.SimCLRModel` (``backbone`` then ``head`` with ``fc1``,
            ``relu``, ``fc2``), or any module with ``features(x, layer=...)``.
        images: ``(N, C, H, W)`` float.
        layers: any of ``"encoder"`` (the pooled backbone output), ``"head1"`` (the head's
            first layer after its ReLU), ``"head2"`` (the projection z), as
            :meth:`pe_utils.SimCLRModel.features` defines them.
        batch_size: images per forward pass.
        device: where to run; the model is moved there and left in eval mode.

    Returns:
        ``{layer: (N, D) float32}``.

    Raises:
        ValueError: an unknown layer (from ``model.features``).
    """
    model = model.to(device).eval()
    x_all = torch.as_tensor(images)
    out: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    head = getattr(model, "head", None)
    one_pass = all(hasattr(head, a) for a in ("fc1", "relu", "fc2")) and set(layers) <= {"encoder", "head1", "head2"}
    for start in range(0, len(x_all), batch_size):
        x = x_all[start:start + batch_size].float().to(device)
        if one_pass:  # the backbone once, then the head's layers as SimCLRModel.features does
            h = model.backbone(x)
            h1 = head.relu(head.fc1(h))
            got = {"encoder": h, "head1": h1, "head2": head.fc2(h1)}
        else:
            got = {layer: model.features(x, layer=layer) for layer in layers}
        for layer in layers:
            out[layer].append(got[layer].float().cpu().numpy())
    return {layer: np.concatenate(v) if v else np.zeros((0, 0), np.float32) for layer, v in out.items()}


def reduce_2d(x: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """Two-dimensional coordinates of ``x`` ``(N, D)`` for a scatter plot.

    t-SNE (van der Maaten & Hinton 2008, THESIS ref. 72): scikit-learn's, PCA initialisation,
    perplexity ``min(30, (N - 1) / 3)``, exact up to :data:`EXACT_TSNE_MAX` points; UMAP (McInnes et al. 2018): umap-learn's, 15
    neighbours (at most ``N - 1``), single-threaded so the seed fixes the result. Both use the
    cosine distance (:data:`DISTANCE`). The map is a picture: distances between far groups
    mean little in either; :func:`clustering_scores` is the measure.

    Raises:
        ValueError: unknown method, or fewer than 4 points.
    """
    x = np.asarray(x, np.float32)
    if method not in REDUCTIONS:
        raise ValueError(f"method must be one of {REDUCTIONS}, got {method!r}")
    if len(x) < 4:
        raise ValueError(f"need at least 4 points to reduce, got {len(x)}")
    from threadpoolctl import threadpool_limits

    # one thread: on a few hundred points threads only cost, and with torch loaded two OpenMP
    # runtimes contend (measured: Barnes-Hut t-SNE of 80 points 3.2 s, 0.23 s on one thread)
    with threadpool_limits(limits=1):
        if method == "tsne":
            from sklearn.manifold import TSNE

            perplexity = min(30.0, (len(x) - 1) / 3)
            return TSNE(n_components=2, perplexity=perplexity, metric=DISTANCE, init="pca",
                        method="exact" if len(x) <= EXACT_TSNE_MAX else "barnes_hut",
                        random_state=int(seed)).fit_transform(x).astype(np.float32)
        import umap  # ~15 s on a cold start, so only here

        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), metric=DISTANCE,
                            random_state=int(seed), n_jobs=1)
        return np.asarray(reducer.fit_transform(x), np.float32)


def clustering_scores(x: np.ndarray, groups: Iterable, k: int = 5) -> dict[str, float]:
    """How well the views of each source slice cluster, in the full-dimensional space.

    Args:
        x: ``(N, D)`` representations.
        groups: ``(N,)`` source slice of each row (at least 2 groups, each of >= 2 rows).
        k: neighbours of the k-NN vote (5; at most the smallest group's size - 1).

    Returns:
        ``{"silhouette", "knn_accuracy", "chance", "k"}``: scikit-learn's silhouette score
        (cosine; 1 = tight, far-apart groups, 0 = overlapping, < 0 = mixed); the share of rows
        whose source a ``k``-nearest-neighbour vote of the *other* rows recovers (leave one
        out; cosine); and the chance level of that accuracy, 1 / number of groups.

    Raises:
        ValueError: lengths differ, fewer than 2 groups, or a group of one row.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import LeaveOneOut, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    x = np.asarray(x, np.float64)
    groups = np.asarray(list(groups))
    if len(x) != len(groups):
        raise ValueError(f"{len(x)} rows but {len(groups)} group labels")
    names, counts = np.unique(groups, return_counts=True)
    if len(names) < 2 or counts.min() < 2:
        raise ValueError(f"need >= 2 groups of >= 2 rows each, got sizes {dict(zip(names.tolist(), counts.tolist()))}")
    from threadpoolctl import threadpool_limits

    k = int(max(1, min(k, counts.min() - 1)))
    knn = KNeighborsClassifier(n_neighbors=k, metric=DISTANCE)
    with threadpool_limits(limits=1):  # see reduce_2d
        accuracy = cross_val_score(knn, x, groups, cv=LeaveOneOut()).mean()
    return {"silhouette": float(silhouette_score(x, groups, metric=DISTANCE)),
            "knn_accuracy": float(accuracy), "chance": 1.0 / len(names), "k": k}


def linear_probe_auc(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                     seed: int = 0, c: float = 1.0) -> float | None:
    """Test AUC of a logistic regression trained on frozen features (a linear probe).

    The features are standardised on the training rows; the regression is L2-regularised
    (``C = c``) with balanced class weights (positives are rare: 4 % in Dataset1), lbfgs.

    Args:
        train_x, train_y: ``(N, D)`` features and ``(N,)`` 0/1 labels of the training slices.
        test_x, test_y: the same of the test slices.
        seed: the regression's random state.
        c: inverse regularisation strength.

    Returns:
        The test ROC AUC (scikit-learn), or ``None`` when the training or the test labels hold
        one class (no regression can be trained, or no AUC is defined).

    Raises:
        ValueError: features and labels of different lengths, or train and test of different widths.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    train_y, test_y = np.asarray(train_y).astype(int), np.asarray(test_y).astype(int)
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise ValueError(f"features and labels differ in length: train {len(train_x)} vs {len(train_y)}, "
                         f"test {len(test_x)} vs {len(test_y)}")
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"train and test features must be (N, D) of one width, got {train_x.shape}, {test_x.shape}")
    if len(np.unique(train_y)) < 2 or len(np.unique(test_y)) < 2:
        return None
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", max_iter=2000,
                                                               random_state=int(seed)))
    probe.fit(train_x, train_y)
    return float(roc_auc_score(test_y, probe.predict_proba(test_x)[:, 1]))
