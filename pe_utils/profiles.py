"""Named parameter sets: ``smoke`` (the test suite), ``demo`` (CPU), ``thesis`` (GPU).

A notebook's parameters cell holds ``profile`` plus one variable per setting, each
``None`` by default; :func:`resolve` fills every ``None`` from the profile, so a value
given to papermill (``-p epochs 3``) always wins over the profile.

Every number of the thesis profile cites its section of the thesis; choices the thesis
leaves open are marked *(our choice)*.
"""
from __future__ import annotations

import copy
from typing import Any

#: the seven Case1/Case3 sampling rates and their test names (Table 6.1)
SAMPLING_RATES: dict[str, str] = {
    "9/10": "Test90",
    "4/5": "Test80",
    "3/4": "Test75",
    "2/3": "Test66",
    "1/2": "Test50",
    "1/3": "Test33",
    "1/4": "Test25",
}

#: threshold pairs (upper, lower) of the two-threshold triage: the five pairs of 6.2.2
#: (Figs 6.7, 6.8; Table 6.2 and Fig 6.15 pick among them), least restrictive first
THESIS_THRESHOLD_PAIRS: tuple[tuple[float, float], ...] = (
    (0.75, 0.25),
    (0.8, 0.2),
    (0.85, 0.15),
    (0.9, 0.1),
    (0.95, 0.05),
)

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        # seconds: a handful of tiny patients, one or two epochs of a tiny network
        "data": dict(patients=6, slices_per_patient=12, positive_fraction=0.5, seed=0,
                     size=64, channels="gray", workers=1,
                     difficulty=None),  # the generator's default (phantom DEFAULT_DIFFICULTY)
        "case1": dict(arch="resnet18", image_size=32, batch_size=16, epochs=1,
                      epochs_small=1, lr=0.01, optimizer="sgd", momentum=0.9,
                      lr_step=1, lr_gamma=0.5, schedule="epoch", gamma=2.0,
                      dropout=0.5, bias_prior=None, augment=True, seed=0,
                      num_workers=0, max_gallery=4),
        # Case3 (notebooks 02, 03): two pretraining epochs (a loss curve needs two points)
        "pretrain": dict(arch="resnet18", image_size=32, batch_size=32, epochs=2, lr=0.01,
                         momentum=0.9, temperature=0.1, hidden=None, out_dim=128,
                         snapshot_epochs=(), seed=0, num_workers=0, n_show=4),
        "case3": dict(batch_size=16, step1_epochs=1, step1_lr=0.001, step2_epochs=1, step2_lr=0.01,
                      keep_head_layers=0),
    },
    "demo": {
        # CPU, ResNet18 on 64x64 inputs. Generator 2.0's clots at the default difficulty (0.3) are
        # 1-2 pixels at 64 px: at 1/3 the network learned nothing (validation AUC 0.50-0.57 over
        # 8 epochs), so the demo phantom is the easiest one (difficulty 0: larger, longer, more
        # central clots; 32 positive series, 401 positive slices = 16.7 %, at most 30 % of a
        # series). Measured 2026-11-30, seed 0, 2 busy cores, rates 9/10 2/3 1/2 1/3 1/4: test AUC
        # 0.85 0.82 0.80 0.83 0.81, F1 0.15 0.12 0.10 0.30 0.36 (nearest-annotated-slice baseline
        # 0.95 0.85 0.85 0.82 0.78), oracle workload 96-100 %, 90-250 CPU-seconds a rate; Adam 1e-3
        # (batch 16) did no better at 1/3 (AUC 0.84, F1 0.17). Issue 8's targets (AUC >= 0.90,
        # F1 >= 0.70, oracle workload < 75 % at 1/3) are NOT met at 64 px in this budget
        "data": dict(patients=40, slices_per_patient=60, positive_fraction=0.8, seed=0,
                     difficulty=0.0, size=128, channels="gray", workers=2),
        # lr_step 2: the rate halves twice in 5 epochs and three times in 8 (lr_step 5 never decayed)
        "case1": dict(arch="resnet18", image_size=64, batch_size=32, epochs=5,
                      epochs_small=8, lr=0.01, optimizer="sgd", momentum=0.9,
                      lr_step=2, lr_gamma=0.5, schedule="epoch", gamma=2.0,
                      dropout=0.5, bias_prior=None, augment=True, seed=0,
                      num_workers=0, max_gallery=12),
        # Case3 on 2 CPU cores: pretraining in about two minutes (2400 images, two views each, 32 px:
        # 150 CPU-seconds for 3 epochs); lr 0.03 makes 54 steps show the loss falling (measured
        # 5.33, 4.82, 4.56; 0.1 oscillated, 0.01 is the thesis's for 150 epochs). Fine-tuning runs at
        # Case1's 64 px, so the two cases see the same inputs (our choices)
        "pretrain": dict(arch="resnet18", image_size=32, batch_size=128, epochs=3, lr=0.03,
                         momentum=0.9, temperature=0.1, hidden=None, out_dim=128,
                         snapshot_epochs=(), seed=0, num_workers=0, n_show=6),
        "case3": dict(batch_size=32, step1_epochs=2, step1_lr=0.001, step2_epochs=3, step2_lr=0.01,
                      keep_head_layers=0),
    },
    "thesis": {
        # a phantom like Dataset1 (15,556 images, 655 positive = 4.21 %, 4.1.1) when no RSNA
        # data is given: 259 x 60 = 15,540 images, 79 positive series of ~13 % positive slices
        # (RSNA's share) = 653 positive (4.20 %); 60 slices: every Case1 rate divides it
        "data": dict(patients=259, slices_per_patient=60, positive_fraction=0.305, seed=0,
                     size=128, channels="gray", workers=8,  # 128x128 (4.1.1)
                     difficulty=None),  # the generator's default (phantom DEFAULT_DIFFICULTY)
        "case1": dict(
            arch="resnet50",       # ResNet50 (4.1.4)
            image_size=128,        # 128x128 (4.1.1)
            batch_size=32,         # batch 32 (4.1.2)
            epochs=40,             # 40 epochs (4.1.2)
            epochs_small=50,       # 50 for the smallest training sets (4.1.2); 1/3 and 1/4 (our choice)
            lr=0.01,               # initial learning rate 0.01 (4.1.2)
            optimizer="sgd",       # SGD (4.1.3)
            momentum=0.9,          # momentum 0.9 (4.1.3)
            lr_step=10,            # step decay (Fig. 4.6): halve every 10 epochs (our choice)
            lr_gamma=0.5,          # the factor of that decay (our choice: the thesis gives none)
            schedule="epoch",      # epoch-based step decay, as in Case1 (Appendix A)
            gamma=2.0,             # focal loss gamma = 2 (4.1.3)
            dropout=0.5,           # dropout before the last layer (4.1.4); rate is our choice
            bias_prior=None,       # no bias initialisation in Case1 (Eq. 5.2 is Case2's)
            augment=True,          # rotation 10 deg, shift 10 %, zoom 20 % (4.1.1)
            seed=0,                # (our choice) the thesis ran each test once (6.2.1): repeat over seeds
            num_workers=8,         # loader processes (no thesis number: speed only)
            max_gallery=24,        # uncertain slices shown in notebook 01 (display only)
        ),
        "pretrain": dict(
            arch="resnet50",       # encoder ResNet50 (4.2)
            image_size=128,        # as Case1 (4.1.1)
            batch_size=1000,       # batch 1000 (4.2): global, split across torchrun processes
            epochs=150,            # 150 epochs (4.2); the 75-epoch encoder is the snapshot below
            lr=0.01,               # constant learning rate 0.01 (4.2)
            momentum=0.9,          # SGD momentum 0.9 (4.2)
            temperature=0.1,       # NT-Xent temperature 0.1 (4.2)
            hidden=2048,           # projection 2048 -> 2048 -> 128 (our choice, from SimCLR)
            out_dim=128,
            snapshot_epochs=(75,),  # 75 epochs (4.2): a constant lr makes epoch 75 of the 150-epoch run
                                    # the 75-epoch run (same seed, same per-epoch order and views)
            seed=0,
            num_workers=8,
            n_show=6,
        ),
        "case3": dict(
            batch_size=64,          # batch 64 in both steps (4.3)
            step1_epochs=30,        # step 1: encoder frozen, new head trained, 30 epochs (4.3)
            step1_lr=0.001,         # initial learning rate 0.001, step decay (4.3)
            step2_epochs=30,        # step 2: the whole network, 30 epochs (4.3)
            step2_lr=0.01,          # initial learning rate 0.01, step decay (4.3)
            keep_head_layers=0,     # drop the whole projection head (4.3; 1 keeps its first layer, SimCLRv2)
        ),
    },
}

#: rates trained for ``epochs_small`` epochs: the smallest training sets (4.1.2)
SMALL_RATES = ("1/3", "1/4")


def resolve(section: str, profile: str, **given: Any) -> dict[str, Any]:
    """Merge a profile's ``section`` with the values given by the caller.

    Args:
        section: which part of the profile, e.g. ``"data"`` or ``"case1"``.
        profile: ``"smoke"``, ``"demo"`` or ``"thesis"``.
        **given: parameters from the notebook; ``None`` means "take the profile's value".

    Returns:
        A new dict: the profile's values, overridden by every non-``None`` given value.
        Given names that the profile lacks are kept too.

    Raises:
        ValueError: unknown profile or section.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    if section not in PROFILES[profile]:
        raise ValueError(f"profile {profile!r} has no section {section!r}")
    merged = copy.deepcopy(PROFILES[profile][section])
    merged.update({k: v for k, v in given.items() if v is not None})
    return merged
