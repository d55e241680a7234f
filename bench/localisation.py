"""Where a briefly trained classifier looks: Grad-CAM against the phantom's clot masks.

    python bench/localisation.py [--cache data/cache-demo] [--size 64] [--epochs 4]

Trains a ResNet18 (Adam 1e-3, batch 32, positive-weighted BCE) on a phantom cache's slices
at ``--size`` px, holding out 8 patients, then scores Grad-CAM on every held-out positive
slice at ``layer4``, ``layer3`` and ``layer2`` (grids of side/32, /16, /8) for several
dilations, beside the chance level (a uniform map) and the perfect map of the same grid
(:func:`pe_utils.evaluate.localisation.perfect_maps`). It prints figures, asserts nothing;
a few CPU minutes at 64 px. The cache needs ``masks.npy`` (a phantom made with masks).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import torch
    import torch.nn.functional as F
    from sklearn.metrics import roc_auc_score

    from pe_utils.data.cache import load_cache
    from pe_utils.evaluate.gradcam import grad_cam
    from pe_utils.experiments.gradcam_runs import cam_grid
    from pe_utils.evaluate.localisation import localisation_scores
    from pe_utils.learn.models import build_classifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", default="data/cache-demo")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cache = load_cache(args.cache)
    if cache.masks is None:
        sys.exit(f"{args.cache} has no masks.npy: regenerate the phantom and preprocess it")
    index, y = cache.index, cache.index.pe_present_on_image.to_numpy()
    rng = np.random.default_rng(args.seed)
    patients = np.array(sorted(index.StudyInstanceUID.unique()))
    rng.shuffle(patients)
    test = index.StudyInstanceUID.isin(set(patients[:8])).to_numpy()
    side = cache.images.shape[-1]

    def at_size(a: np.ndarray, pool) -> torch.Tensor:
        x = torch.from_numpy(np.array(a)).float()[:, None]
        return pool(x, side // args.size) if side != args.size else x

    x = at_size(cache.images, F.avg_pool2d) / 255.0
    masks = at_size(cache.masks, F.max_pool2d)[:, 0].numpy() > 0  # any clot pixel survives
    train, held = np.flatnonzero(~test), np.flatnonzero(test)
    model = build_classifier("resnet18", 1, dropout=0.2)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    pos_weight = torch.tensor((y[train] == 0).sum() / max(1, (y[train] == 1).sum()))
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(train)
        for b in range(0, len(order), 32):
            j = order[b:b + 32]
            loss = F.binary_cross_entropy_with_logits(model(x[j]), torch.from_numpy(y[j]).float(),
                                                      pos_weight=pos_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        p = torch.cat([torch.sigmoid(model(x[held[b:b + 128]])) for b in range(0, len(held), 128)])
    pos = held[y[held] == 1]
    print(f"ResNet18, {args.epochs} epochs at {args.size} px ({time.perf_counter() - start:.0f} s): "
          f"held-out AUC {roc_auc_score(y[held], p.numpy()):.3f}, {len(pos)} positive slices")
    for name in ("layer4", "layer3", "layer2"):
        grid, layer = cam_grid(args.size, name), getattr(model.backbone, name)[-1]
        with grad_cam(model, layer) as cam:
            maps = cam(x[pos])
        for d in (2, 4, 8, 16):
            s = localisation_scores(maps, masks[pos], d, grid=grid)
            print(f"{name} {grid}x{grid} dilate {d:2d}: model energy {s['energy_mean']:.3f} "
                  f"pointing {s['pointing_rate']:.3f} | perfect map energy {s['energy_perfect']:.3f} "
                  f"pointing {s['pointing_perfect']:.3f} | chance {s['energy_chance']:.3f}")


if __name__ == "__main__":
    main()
