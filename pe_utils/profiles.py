"""Named parameter sets: ``smoke`` (the test suite), ``demo`` (CPU), ``thesis`` (GPU), and
``rehearse`` (the thesis profile with capped data and epochs: ``batch --rehearse``).

A notebook's parameters cell holds ``profile`` plus one variable per setting, each
``None`` by default; :func:`resolve` fills every ``None`` from the profile, so a value
given to papermill (``-p epochs 3``) always wins over the profile.

Every number of the thesis profile cites its section of the thesis; choices the thesis
leaves open are marked *(our choice)*. The module is longer than 300 lines because every
setting sits beside its source or its reason.
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

#: the demo's fixed crop (pe_utils.data.crop): rows 17-96 and columns 27-106 of a 128-pixel slice,
#: the box around every artery that can hold a demo clot (Case1, Case3's pretraining and fine-tuning)
DEMO_CROP = (0.13, 0.21, 0.625, 0.625)

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        # seconds: a handful of tiny patients, one or two epochs of a tiny network
        "data": dict(patients=6, slices_per_patient=12, positive_fraction=0.5, seed=0,
                     size=64, channels="gray", workers=1,
                     difficulty=None,  # the generator's default (phantom DEFAULT_DIFFICULTY)
                     # Dataset1 picked from an RSNA-layout folder (batch --rsna-root): six 12-slice exams
                     dataset1=dict(n_images=72, n_positive=8,
                                   tolerance=dict(n_images_rel=0.2, positive_fraction_abs=0.08))),
        "case1": dict(arch="resnet18", image_size=32, batch_size=16, epochs=1,
                      epochs_small=1, lr=0.01, optimizer="sgd", momentum=0.9,
                      lr_step=1, lr_gamma=0.5, schedule="epoch", gamma=2.0,
                      dropout=0.5, bias_prior=None, augment=True, seed=0,
                      num_workers=0, max_gallery=4, crop=None, epochs_by_rate=None),
        # Case3 (notebooks 02, 03): two pretraining epochs (a loss curve needs two points)
        "pretrain": dict(arch="resnet18", image_size=32, batch_size=32, epochs=2, lr=0.01,
                         momentum=0.9, temperature=0.1, hidden=None, out_dim=128,
                         snapshot_epochs=(), seed=0, num_workers=0, n_show=4, crop=None),
        "case3": dict(batch_size=16, step1_epochs=1, step1_lr=0.001, step2_epochs=1, step2_lr=0.01,
                      keep_head_layers=0, match_case1_epochs=False),
    },
    "demo": {
        # CPU: ResNet10 on 48x48 inputs (below). Generator 2.0's clots at the default difficulty (0.3) are
        # 1-2 pixels at 64 px: at 1/3 the network learned nothing (validation AUC 0.50-0.57 over
        # 8 epochs). Difficulty 0 of generator 2.0 (larger, longer, more central clots) still gave
        # test AUC 0.80-0.85 and F1 0.00-0.36 at the seven rates (2026-11-30). Generator 2.2's
        # difficulty 0 (pe_utils.phantom.anatomy.KNOBS: partly occluding clots in the trunk and the
        # main arteries only, few look-alikes, little noise) is the demo's phantom: easier than
        # Dataset1 (no lobar, segmental or subsegmental clots) so that a CPU network learns it in a
        # minute, with the same rule that a positive series holds 5-30 % positive slices
        # (tests/test_phantom_statistics.py). 2.1's, which also had lobar clots, capped the demo's
        # network at test AUC 0.92 and F1 0.5-0.6 at 1/3 (the figures below are on 2.1)
        "data": dict(patients=40, slices_per_patient=60, positive_fraction=0.8, seed=0,
                     difficulty=0.0, size=128, channels="gray", workers=2,
                     dataset1=None),  # from an RSNA folder (batch --rsna-root): the spec's counts
        # Measured 2026-12-02, rate 1/3, seed 0 (2 busy cores), focal loss, lr 0.01, 8 epochs: 2.0's
        # phantom, whole slice at 64 px: test AUC 0.80, F1 0.01; with a central 75 % crop 0.84, F1
        # 0.51; 2.1's phantom with the crop 0.89, F1 0.60. The network needs about 6,000-7,700
        # training images (190-240 steps of 32), so each rate gets the epochs that give it about that
        # many (epochs_by_rate: a 9/10 training set is 2.7 times a 1/3 one); the learning rate halves
        # every 60 steps whatever the rate (schedule "iteration", Appendix A). ResNet18 at lr 0.01 was
        # seed-unstable (1/3: test AUC 0.910 at seed 0, 0.822 at seed 1); ResNet10 at 48 px and lr
        # 0.01 gave 0.920 and 0.911 at seeds 0 and 1 (1/3; oracle workload 71.5 % and 85.1 %), at
        # lr 0.005 0.915 but so unconfident that no pair was useful (oracle workload 100 %).
        # Batch 16 was unstable (validation AUC 0.36-0.85 over 6 epochs at 1/3); focal gamma 1 gave
        # AUC 0.911 but F1 0.38 at 1/3 (gamma 2: 0.61)
        # Budget (issue 13: the whole course in 20 minutes with set-up, 2 cores): on 2026-12-02 a
        # fresh-clone make demo took 31 min, Case1 alone 15 (ResNet18 at 64 px: 105 s of training
        # at 1/3). ResNet10 (pe_utils.learn.models.ARCHS) at 48 px on an 80-pixel box around the
        # lungs' arteries (every demo clot's mask lies in rows 35-68, columns 33-91 of 128 on generator 2.2): 47 s
        # of training and 11 s of TTA at 1/3 (against 105 s and 31 s), test AUC 0.915 (ResNet18: 0.903)
        # at lr 0.005; the Case2/4 demo runs one seed (04 and 05 in notebooks/plan.json)
        "case1": dict(arch="resnet10", image_size=48, batch_size=32, epochs=5,
                      epochs_small=12, lr=0.01, optimizer="sgd", momentum=0.9,
                      lr_step=60, lr_gamma=0.5, schedule="iteration", gamma=2.0,
                      dropout=0.5, bias_prior=None, augment=True, seed=0,
                      num_workers=0, max_gallery=12, crop=DEMO_CROP,
                      epochs_by_rate={"9/10": 4, "4/5": 4, "3/4": 4, "2/3": 5, "1/2": 7,
                                      "1/3": 12, "1/4": 13}),
        # Case3 on 2 CPU cores: pretraining in about two minutes (2400 images, two views each, 32 px:
        # 150 CPU-seconds for 3 epochs); lr 0.03 makes 54 steps show the loss falling (measured
        # 5.33, 4.82, 4.56 on generator 2.0; 0.1 oscillated, 0.01 is the thesis's for 150 epochs).
        # Fine-tuning runs at Case1's 48 px and the pretraining views come from Case1's crop, so the
        # two cases see the same part of each slice (our choices)
        "pretrain": dict(arch="resnet10", image_size=32, batch_size=128, epochs=3, lr=0.03,
                         momentum=0.9, temperature=0.1, hidden=None, out_dim=128,
                         snapshot_epochs=(), seed=0, num_workers=0, n_show=6,
                         crop=DEMO_CROP),
        # match_case1_epochs: step 2 trains Case1's epochs less step 1's (9/10: 2 + 2, 1/4: 2 + 11), so Case3 vs
        # Case1 is no budget gap (2 + 3 everywhere gave AUC 0.886 at 1/4 against 0.982, equal epochs 0.973; our choice)
        "case3": dict(batch_size=32, step1_epochs=2, step1_lr=0.001, step2_epochs=3, step2_lr=0.01,
                      keep_head_layers=0, match_case1_epochs=True),
    },
    "thesis": {
        # a phantom like Dataset1 (15,556 images, 655 positive = 4.21 %, 4.1.1) when no RSNA
        # data is given: 259 x 60 = 15,540 images, 79 positive series of ~13 % positive slices
        # (RSNA's share) = 653 positive (4.20 %); 60 slices: every Case1 rate divides it
        "data": dict(patients=259, slices_per_patient=60, positive_fraction=0.305, seed=0,
                     size=128, channels="gray", workers=8,  # 128x128 (4.1.1)
                     difficulty=None,  # the generator's default (phantom DEFAULT_DIFFICULTY)
                     dataset1=None),   # from an RSNA folder: the spec's 15,556 images, 655 positive (4.1.1)
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
            crop=None,             # the whole 128x128 slice (4.1.1): no crop
            epochs_by_rate=None,   # epochs / epochs_small above (4.1.2), no per-rate list
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
            crop=None,              # the whole slice, as Case1 (4.1.1)
        ),
        "case3": dict(
            batch_size=64,          # batch 64 in both steps (4.3)
            step1_epochs=30,        # step 1: encoder frozen, new head trained, 30 epochs (4.3)
            step1_lr=0.001,         # initial learning rate 0.001, step decay (4.3)
            step2_epochs=30,        # step 2: the whole network, 30 epochs (4.3)
            step2_lr=0.01,          # initial learning rate 0.01, step decay (4.3)
            keep_head_layers=0,     # drop the whole projection head (4.3; 1 keeps its first layer, SimCLRv2)
            match_case1_epochs=False,  # 30 + 30 epochs at every rate (4.3), not Case1's 40-50
        ),
    },
}

# ---------------------------------------------------------------- Cases 2 and 4 (notebooks 04, 05)
# Sections added to every profile: "data2" (the Dataset2-like phantom and the Case2/4 test set)
# and "case2" (Case2's training; Case4 fine-tunes with the same values, 5.2).
#
# data2: a pool phantom is generated and Dataset2 picked from it by whole patients with the
# manifest builder that picks RSNA subsets (pe_utils/data/specs/dataset2.json), so the phantom
# goes through the RSNA path. 15.38 % positive images needs positive-rich exams, as the thesis's
# enriched subset (5.1.1): generator 2.0 makes 13.8 % of a positive 60-slice series positive at
# the default difficulty (about 19 % at difficulty 0), so the pool is (nearly) all positive patients
# and larger than Dataset2: the builder keeps its positive-richest exams. The test set comes from a second phantom (other seed: other
# patients, other UIDs), a capped sample of each patient's slices (specs/case2_test.json).
_CASE2_SECTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "data2": dict(patients=8, slices_per_patient=12, positive_fraction=1.0, seed=2, difficulty=None,
                      size=64, channels="gray", workers=1, n_images=72, n_positive=11,
                      tolerance=dict(n_images_rel=0.2, positive_fraction_abs=0.06),
                      test_patients=6, test_positive_fraction=1.0, test_seed=3, test_n_images=36,
                      test_n_positive=12, test_caps=(20, 4),
                      test_tolerance=dict(n_images_rel=0.2, positive_fraction_abs=0.1), manifest_seed=0),
        "case2": dict(arch="resnet18", image_size=32, batch_size=16, epochs=1, epochs_by_fraction=None,
                      lr=0.001, optimizer="adam",
                      momentum=0.9, lr_step=1, lr_gamma=0.5, schedule="epoch", schedule_reference_fraction=0.25,
                      gamma=2.0, dropout=0.5, bias_prior=0.01, class_weights=True, sampling="resample",
                      augment=True, dataset="dataset2", seed=0, num_workers=0, exam_topk=3),
    },
    "demo": {
        # 16 x 60 pool at difficulty 0 (the demo's clots, visible at 64 px); Dataset2 = 13 of its
        # patients (780 images, 120 positive); test 120 images, 38 positive (31.7 %), at most 8 slices of a
        # class from each of 12 patients (more exams for the exam-level AUC)
        "data2": dict(patients=16, slices_per_patient=60, positive_fraction=0.75, seed=2, difficulty=0.0,
                      size=128, channels="gray", workers=2, n_images=780, n_positive=120,
                      tolerance=dict(n_images_rel=0.05, positive_fraction_abs=0.01),
                      test_patients=12, test_positive_fraction=0.6, test_seed=3, test_n_images=120,
                      test_n_positive=38, test_caps=(8, 8),
                      test_tolerance=dict(n_images_rel=0.05, positive_fraction_abs=0.02), manifest_seed=0),
        # CPU: batch 32, not 256 (the 100 % training set is about
        # 650 images after re-sampling: 256 would give 3 steps an epoch); Adam at 0.001, not 0.01
        # (from scratch on a few hundred images 0.01 diverged in Case1's trials) (our choices)
        # ResNet10 as Case1's demo (the whole slice at 64 px: Dataset2's cache has no crop). A 25 %
        # set has 5 batches an epoch: 4 epochs gave test AUC 0.35 and 0.47 (2026-12-02), so it
        # trains 16 epochs, the steps of the whole set's 4 (epochs_by_fraction; our choice)
        "case2": dict(arch="resnet10", image_size=64, batch_size=32, epochs=4, epochs_by_fraction={25: 16},
                      lr=0.001, optimizer="adam",
                      momentum=0.9, lr_step=2, lr_gamma=0.5, schedule="epoch", schedule_reference_fraction=0.25,
                      gamma=2.0, dropout=0.5, bias_prior=0.01, class_weights=True, sampling="resample",
                      augment=True, dataset="dataset2", seed=0, num_workers=0, exam_topk=3),
    },
    "thesis": {
        "data2": dict(
            patients=480,            # pool: 28,800 images, every patient positive (our choice)
            slices_per_patient=60,   # as Dataset1's phantom
            positive_fraction=1.0,   # the pool holds 13.8 % positive slices; the builder picks its
                                     # positive-richest 333 patients: 19,980 images, 3,068 positive =
                                     # 15.36 % (checked on the plans' labels, 2026-12-02)
            seed=2,                  # other patients than Dataset1's phantom (seed 0)
            difficulty=None,         # the generator's default
            size=128, channels="gray", workers=8,     # 128x128 gray (4.1.1, as Case1)
            n_images=19946,          # Dataset2: 19,946 images (5.1.1)
            n_positive=3068,         # 15.38 % positive (5.1.1): round(0.1538 x 19946)
            tolerance=None,          # the spec's (specs/dataset2.json)
            test_patients=40, test_positive_fraction=0.75, test_seed=3,   # new patients (5.1.1)
            test_n_images=455,       # 455 test images (5.1.1)
            test_n_positive=146,     # 146 positive = 32.08 % (5.1.1)
            test_caps=None,          # the spec's 20 positive / 20 negative slices per patient
            test_tolerance=None,     # the spec's (specs/case2_test.json)
            manifest_seed=0,
        ),
        "case2": dict(
            arch="resnet50",         # the architecture of 4.1.4 (5.1.4)
            image_size=128,          # 128x128 (4.1.1)
            batch_size=256,          # batch 256 (5.1.2; Table 6.3 exp. 10-11)
            epochs=50,               # 50 epochs (5.1.2)
            epochs_by_fraction=None,  # every fraction trains 50 epochs (5.1.2)
            lr=0.01,                 # initial learning rate 0.01 (Table 6.3, C.2)
            optimizer="adam",        # Adam (5.1.3)
            momentum=0.9,            # SGD momentum of Table 6.3's SGD experiments (6.3.1)
            lr_step=10,              # step decay (5.1.2): halve every 10 epochs (our choice, as Case1)
            lr_gamma=0.5,            # (our choice: the thesis gives no factor)
            schedule="epoch",        # epoch-based decay as in Table 6.3 (6.3.1); "iteration": Appendix A
            schedule_reference_fraction=0.25,  # Appendix A turned the 25 % set's epoch decay into iterations
            gamma=2.0,               # binary focal loss gamma 2 (Eq. 4.1, kept in 5.1.3)
            dropout=0.5,             # dropout in the head (5.1.4, Table 6.3 exp. 3); rate is our choice
            bias_prior=0.01,         # final-layer bias -log((1 - pi) / pi), pi = 0.01 (Eq. 5.2)
            class_weights=True,      # w_c = n_samples / (n_classes n_c) (Eq. 5.1)
            sampling="resample",     # positives x3, two thirds of the negatives (5.1.1)
            augment=True,            # Case1's augmentation, training only (5.1.1)
            dataset="dataset2",      # Table 6.3 exp. 11 and Table 6.4
            seed=0,
            num_workers=8,
            exam_topk=3,             # exam score: mean of the 3 highest slice probabilities (our choice)
        ),
    },
}
for _profile, _sections in _CASE2_SECTIONS.items():
    PROFILES[_profile].update(_sections)

# ---------------------------------------------------------------- notebook 06 (explain)
# "explain": four slices x 20 views (THESIS 6.2.3), the linear probe on Case1's split at 1/2 (our
# choice: train and test sets of similar size), masks dilated by 2 px before scoring Grad-CAM (our
# choice). The smoke profile draws t-SNE only: UMAP's first call compiles numba code (about 8 s
# on an idle 2-core machine, the smoke run's largest cost); tests/test_embeddings.py covers UMAP.
# cam_layer: layer4, the last block, as the thesis (4x4 at 128 px); at the demo's 48-64 px it is 2x2, where a perfect
# map scored energy 0.064-0.072 against chance 0.051-0.059, pointing 0; layer2 (6x6, 8x8): 0.36-0.43, 0.37-0.40 (our choice)
_EXPLAIN = dict(n_views=20, probe_rate="1/2", dilate_px=2, seed=0, cam_layer="layer4")
for _profile, _reductions, _layer in (("smoke", ("tsne",), "layer4"), ("demo", ("tsne", "umap"), "layer2"),
                                      ("thesis", ("tsne", "umap"), "layer4")):
    PROFILES[_profile]["explain"] = dict(_EXPLAIN, reductions=_reductions, cam_layer=_layer)

# ---------------------------------------------------------------- the rehearsal (batch --rehearse)
#: The thesis profile with these values and nothing else changed: every notebook of the thesis plan
#: at its architecture, image size, optimiser, schedule, loss and options, on few images for one or
#: two epochs, so that the whole plan runs through the real-data path on a 2-core CPU. Each cap is
#: stated on the run's page and in its status (:func:`rehearsal_caps`).
REHEARSAL_CAPS: dict[str, dict[str, Any]] = {
    # one RSNA-layout phantom holds the three datasets: 30 exams of 12 slices
    "data": dict(patients=30, slices_per_patient=12, positive_fraction=0.9, workers=2,
                 dataset1=dict(n_images=120, n_positive=20,
                               tolerance=dict(n_images_rel=0.1, positive_fraction_abs=0.06))),
    "data2": dict(workers=2, n_images=120, n_positive=18,
                  tolerance=dict(n_images_rel=0.1, positive_fraction_abs=0.06),
                  test_n_images=24, test_n_positive=8, test_caps=(4, 4),
                  test_tolerance=dict(n_images_rel=0.2, positive_fraction_abs=0.1)),
    "case1": dict(epochs=1, epochs_small=1, num_workers=0),
    "pretrain": dict(batch_size=32, epochs=2, snapshot_epochs=(1,), num_workers=0),
    "case3": dict(step1_epochs=1, step2_epochs=1),
    "case2": dict(epochs=1, num_workers=0),
}
PROFILES["rehearse"] = {section: {**copy.deepcopy(values), **copy.deepcopy(REHEARSAL_CAPS.get(section, {}))}
                        for section, values in PROFILES["thesis"].items()}


def rehearsal_caps() -> list[str]:
    """The rehearsal's caps in words, one per changed setting: ``"case1.epochs: 40 -> 1"``."""
    lines = []
    for section, caps in REHEARSAL_CAPS.items():
        for name, value in caps.items():
            before = PROFILES["thesis"][section].get(name)
            lines.append(f"{section}.{name}: {before!r} -> {value!r}" if name in PROFILES["thesis"][section]
                         else f"{section}.{name}: {value!r} (the thesis profile uses the spec's figures)")
    return lines


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
