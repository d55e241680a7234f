"""Named parameter sets, read from the TOML files of ``pe_utils/settings/``: ``smoke`` (the test
suite), ``demo`` (CPU), ``thesis`` (GPU) and ``rehearse`` (the thesis profile with capped data and
epochs: ``batch --rehearse``).

A notebook's parameters cell holds ``profile`` plus one variable per setting, each ``None`` by
default; :func:`resolve` fills every ``None`` from the profile, so a value given to papermill
(``-p epochs 3``) always wins over the profile, and refuses a name that the section lacks.

Each section of a profile is a dataclass below: its fields are the section's settings, their
annotations the types a file must give. :func:`load_profile` reads a file against them and refuses
an unknown, misspelt or missing key (naming the file, the section, the closest valid key and every
valid one) or a value of the wrong type. The files say where each value comes from: the thesis's
section, or *(our choice)* with its reason. TOML has no null: a section names its ``None``
settings in its ``none`` list. Arrays are read as tuples; a file may start from another profile
(``inherits``). Table 6.3's experiments are read the same way (:func:`load_experiments`).

The module is longer than 300 lines because it holds the schema of every section, one typed
field per setting, beside the loader that enforces it: one idea, the settings.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import tomllib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

#: the folder of the settings files (package data)
SETTINGS = Path(__file__).with_name("settings")
#: the profiles, each read from ``SETTINGS / f"{name}.toml"``
PROFILE_NAMES = ("smoke", "demo", "thesis", "rehearse")
#: the key of a section that lists its ``None`` settings; the top-level key naming a parent profile
NONE, INHERITS = "none", "inherits"

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

#: rates trained for ``epochs_small`` epochs: the smallest training sets (4.1.2)
SMALL_RATES = ("1/3", "1/4")

#: threshold pairs (upper, lower) of the two-threshold triage: the five pairs of 6.2.2
#: (Figs 6.7, 6.8; Table 6.2 and Fig 6.15 pick among them), least restrictive first
THESIS_THRESHOLD_PAIRS: tuple[tuple[float, float], ...] = (
    (0.75, 0.25),
    (0.8, 0.2),
    (0.85, 0.15),
    (0.9, 0.1),
    (0.95, 0.05),
)


@dataclass(frozen=True)
class Data:
    """``data``: Dataset1's phantom, or the counts picked from an RSNA folder (``dataset1``)."""

    patients: int
    slices_per_patient: int
    positive_fraction: float          # share of positive patients
    seed: int
    size: int                         # side of the cached slices
    channels: str                     # "gray" or "rgb" (the three windows)
    workers: int
    difficulty: float | None          # None: the phantom generator's default
    dataset1: dict[str, Any] | None   # n_images, n_positive, tolerance; None: the spec's (4.1.1)


@dataclass(frozen=True)
class Case1:
    """``case1``: supervised annotation enrichment (4.1)."""

    arch: str
    image_size: int
    batch_size: int
    epochs: int
    epochs_small: int                 # epochs of the SMALL_RATES
    lr: float
    optimizer: str
    momentum: float
    lr_step: int                      # epochs (schedule "epoch") or steps ("iteration") between decays
    lr_gamma: float
    schedule: str
    gamma: float                      # focal loss
    dropout: float
    bias_prior: float | None          # pi of Eq. 5.2, None: no bias initialisation
    augment: bool
    seed: int
    num_workers: int
    max_gallery: int
    crop: tuple[float, float, float, float] | None  # (top, left, height, width) as shares of the slice
    epochs_by_rate: dict[str, int] | None           # rate "1/3" -> epochs, over the rules above


@dataclass(frozen=True)
class Pretrain:
    """``pretrain``: SimCLR pretraining (4.2)."""

    arch: str
    image_size: int
    batch_size: int
    epochs: int
    lr: float
    momentum: float
    temperature: float
    hidden: int | None                # projection's hidden width; None: the encoder's features
    out_dim: int
    snapshot_epochs: tuple[int, ...]  # encoders also kept after these epochs
    seed: int
    num_workers: int
    n_show: int
    crop: tuple[float, float, float, float] | None
    # the two views (pe_utils.data.augment.SimCLRViews' arguments, without "view_")
    view_crop_scale: tuple[float, float]
    view_crop_ratio: tuple[float, float]
    view_contrast: float
    view_brightness: float
    view_jitter_probability: float
    view_blur_probability: float
    view_blur_sigma: tuple[float, float]
    view_blur_kernel: float


@dataclass(frozen=True)
class Case3:
    """``case3``: the two-step fine-tuning of the pretrained encoder (4.3)."""

    batch_size: int
    step1_epochs: int
    step1_lr: float
    step2_epochs: int
    step2_lr: float
    keep_head_layers: int
    match_case1_epochs: bool          # step 2 trains Case1's epochs at the rate less step 1's


@dataclass(frozen=True)
class Data2:
    """``data2``: the Dataset2-like pool, Dataset2 picked from it, the Case2/4 test set (5.1.1)."""

    patients: int
    slices_per_patient: int
    positive_fraction: float
    seed: int
    difficulty: float | None
    size: int
    channels: str
    workers: int
    n_images: int
    n_positive: int
    tolerance: dict[str, float] | None       # None: the spec's (specs/dataset2.json)
    test_patients: int
    test_positive_fraction: float
    test_seed: int
    test_n_images: int
    test_n_positive: int
    test_caps: tuple[int, int] | None        # (positive, negative) slices a patient; None: the spec's
    test_tolerance: dict[str, float] | None
    manifest_seed: int


@dataclass(frozen=True)
class Case2:
    """``case2``: the general classifier (5.1); Case4 fine-tunes with the same values (5.2)."""

    arch: str
    image_size: int
    batch_size: int
    epochs: int
    epochs_by_fraction: dict[int, int] | None  # training-set % -> epochs
    lr: float
    optimizer: str
    momentum: float
    lr_step: int
    lr_gamma: float
    schedule: str
    schedule_reference_fraction: float
    gamma: float
    dropout: float
    bias_prior: float | None
    class_weights: bool
    sampling: str
    augment: bool
    dataset: str
    seed: int
    num_workers: int
    exam_topk: int


@dataclass(frozen=True)
class Explain:
    """``explain``: notebook 06's views, probe and Grad-CAM (6.2.3, 6.3.2)."""

    n_views: int
    probe_rate: str
    dilate_px: int
    seed: int
    cam_layer: str
    reductions: tuple[str, ...]


@dataclass(frozen=True)
class Experiment:
    """One row of Table 6.3 or C.1: the toggles of notebooks 04 and 05."""

    dataset: str
    lr: float
    batch_size: int
    optimizer: str
    augment: bool
    dropout: bool
    sampling: str
    class_weights: bool
    bias: bool


#: a profile's sections, in this order
SECTIONS: dict[str, type] = {"data": Data, "case1": Case1, "pretrain": Pretrain, "case3": Case3,
                             "data2": Data2, "case2": Case2, "explain": Explain}


def _unknown(where: str, what: str, key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return (f"{where}: unknown {what} {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; valid: {', '.join(valid)}")


def _type_name(kind: Any) -> str:
    return kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")


def _convert(value: Any, kind: Any, where: str) -> Any:
    """``value`` as read by tomllib, as the type ``kind`` (arrays to tuples, keys to ints where asked)."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):          # X | None: None comes from the `none` list only
        return _convert(value, next(a for a in args if a is not type(None)), where)
    if kind is float and type(value) is int:
        return float(value)
    if kind in (int, float, str, bool):
        if type(value) is not kind:
            raise ValueError(f"{where} = {value!r}: expected {kind.__name__}")
        return value
    if kind is Any:
        return value
    if origin is tuple:
        items = args[:1] * len(value) if isinstance(value, list) and args[-1:] == (Ellipsis,) else args
        if not isinstance(value, list) or len(value) != len(items):
            raise ValueError(f"{where} = {value!r}: expected an array, {_type_name(kind)}")
        return tuple(_convert(v, k, f"{where}[{i}]") for i, (v, k) in enumerate(zip(value, items)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where} = {value!r}: expected a table, {_type_name(kind)}")
        key_kind, value_kind = args
        if key_kind is int and not all(k.lstrip("-").isdigit() for k in value):
            raise ValueError(f"{where} = {value!r}: expected integer keys")
        return {key_kind(k): _convert(v, value_kind, f"{where}.{k}") for k, v in value.items()}
    raise TypeError(f"{where}: no reader for {_type_name(kind)}")


def _read_section(where: str, table: Any, cls: type) -> dict[str, Any]:
    """The settings a section writes (its ``none`` ones as None), checked against ``cls``, in the file's order."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table of settings, got {table!r}")
    hints, valid = get_type_hints(cls), [f.name for f in dataclasses.fields(cls)]
    table = dict(table)
    none = table.pop(NONE, [])
    if not isinstance(none, list) or not all(isinstance(k, str) for k in none) or len(set(none)) != len(none):
        raise ValueError(f"{where}: `{NONE}` must be a list of distinct setting names, got {none!r}")
    for key in [*table, *none]:
        if key not in valid:
            raise ValueError(_unknown(where, "key", key, valid))
    for key in none:
        if key in table:
            raise ValueError(f"{where}: {key!r} is both written and listed in `{NONE}`: keep one")
        if type(None) not in get_args(hints[key]):
            raise ValueError(f"{where}: {key!r} cannot be None (a {_type_name(hints[key])}): write its value")
    return {**{k: _convert(v, hints[k], f"{where} {k}") for k, v in table.items()}, **dict.fromkeys(none)}


def _complete(where: str, values: dict[str, Any], cls: type) -> dict[str, Any]:
    """``values`` in ``cls``'s order; refused when a setting is missing."""
    valid = [f.name for f in dataclasses.fields(cls)]
    missing = [k for k in valid if k not in values]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}: write each, or name it in `{NONE}` "
                         f"where it is None; valid: {', '.join(valid)}")
    return {k: values[k] for k in valid}


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None


def load_changes(path: str | Path) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """``(parent, sections)``: the profile a file inherits (or None) and the settings it writes, checked.

    Raises:
        ValueError: not TOML, an unknown section or key, a value of the wrong type.
    """
    raw, path = _read(path), Path(path)
    parent = raw.pop(INHERITS, None)
    if parent is not None and not isinstance(parent, str):
        raise ValueError(f"{path}: `{INHERITS}` must name a profile, got {parent!r}")
    for name in raw:
        if name not in SECTIONS:
            raise ValueError(_unknown(str(path), "section", name, list(SECTIONS)))
    return parent, {name: _read_section(f"{path} [{name}]", table, SECTIONS[name]) for name, table in raw.items()}


def load_profile(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, dict[str, Any]]:
    """A profile file as ``{section: {setting: value}}``, every section and setting present.

    A file with ``inherits = "<profile>"`` starts from the file of that name beside it and
    writes only what it changes.

    Raises:
        ValueError: as :func:`load_changes`; a missing section or setting; an inheritance cycle.
    """
    path = Path(path).resolve()
    if path in _seen:
        raise ValueError(f"{path}: inherits itself ({' -> '.join(p.name for p in (*_seen, path))})")
    parent, sections = load_changes(path)
    base = load_profile(path.with_name(f"{parent}.toml"), (*_seen, path)) if parent else {}
    if not parent and set(sections) != set(SECTIONS):
        raise ValueError(f"{path}: missing section(s) {', '.join(s for s in SECTIONS if s not in sections)}")
    return {name: _complete(f"{path} [{name}]", {**base.get(name, {}), **sections.get(name, {})}, cls)
            for name, cls in SECTIONS.items()}


def load_experiments(path: str | Path = SETTINGS / "table_6_3.toml") -> dict[int, dict[str, Any]]:
    """Table 6.3's and C.1's experiments: ``{number: {toggle: value}}``, every toggle of :class:`Experiment`.

    Raises:
        ValueError: not TOML, a key other than ``[experiment.<number>]``, an unknown, missing or
            ill-typed toggle.
    """
    raw, path = _read(path), Path(path)
    if set(raw) - {"experiment"} or not all(str(n).isdigit() for n in raw.get("experiment", {})):
        raise ValueError(f"{path}: holds only [experiment.<number>] tables, got {sorted(raw)}")
    return {int(n): _complete(f"{path} [experiment.{n}]", _read_section(f"{path} [experiment.{n}]", t, Experiment),
                              Experiment) for n, t in raw["experiment"].items()}


PROFILES: dict[str, dict[str, dict[str, Any]]] = {name: load_profile(SETTINGS / f"{name}.toml")
                                                  for name in PROFILE_NAMES}

#: the demo's fixed crop (pe_utils.data.crop): rows 17-96 and columns 27-106 of a 128-pixel slice,
#: the box around every artery that can hold a demo clot (Case1, Case3's pretraining and fine-tuning)
DEMO_CROP: tuple[float, float, float, float] = PROFILES["demo"]["case1"]["crop"]

#: The rehearsal's caps (``rehearse.toml``): the thesis profile with these values and nothing else
#: changed, so that the whole thesis plan runs through the real-data path on a 2-core CPU. Each cap
#: is stated on the run's page and in its status (:func:`rehearsal_caps`).
REHEARSAL_CAPS: dict[str, dict[str, Any]] = load_changes(SETTINGS / "rehearse.toml")[1]


def rehearsal_caps() -> list[str]:
    """The rehearsal's caps in words, one per changed setting: ``"case1.epochs: 40 -> 1"``."""
    lines = []
    for section, caps in REHEARSAL_CAPS.items():
        for name, value in caps.items():
            before = PROFILES["thesis"][section].get(name)
            lines.append(f"{section}.{name}: {before!r} -> {value!r}" if name in PROFILES["thesis"][section]
                         else f"{section}.{name}: {value!r} (the thesis profile uses the spec's figures)")
    return lines


#: names a caller may give although the section lacks them, passed on unchanged: Case3's fine-tuning
#: takes its ``seed`` with its own settings, over Case1's (pe_utils.experiments.case3.case3_config)
PASSED_ON: dict[str, tuple[str, ...]] = {"case3": ("seed",)}


def resolve(section: str, profile: str, **given: Any) -> dict[str, Any]:
    """Merge a profile's ``section`` with the values given by the caller.

    Args:
        section: which part of the profile, e.g. ``"data"`` or ``"case1"``.
        profile: a key of :data:`PROFILES` (``"smoke"``, ``"demo"``, ``"thesis"``, ``"rehearse"``).
        **given: parameters from the notebook; ``None`` means "take the profile's value".

    Returns:
        A new dict: the profile's values, overridden by every non-``None`` given value.

    Raises:
        ValueError: unknown profile or section; a given name that the section lacks (a misspelt
            setting), with the closest valid name and every valid one (:data:`PASSED_ON` names the
            few that a section lacks and a caller may still give).
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    if section not in PROFILES[profile]:
        raise ValueError(f"profile {profile!r} has no section {section!r}")
    merged = copy.deepcopy(PROFILES[profile][section])
    valid = [*merged, *PASSED_ON.get(section, ())]
    for key in given:
        if key not in valid:
            raise ValueError(_unknown(f"resolve({section!r}, {profile!r})", "setting", key, valid))
    merged.update({k: v for k, v in given.items() if v is not None})
    return merged
