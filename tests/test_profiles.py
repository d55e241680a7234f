"""Profiles: same shape everywhere, papermill's values win, the thesis profile is the thesis."""
from __future__ import annotations

import pytest

from pe_utils.profiles import (PROFILES, REHEARSAL_CAPS, SAMPLING_RATES, SMALL_RATES, THESIS_THRESHOLD_PAIRS,
                               rehearsal_caps, resolve)

#: the Case1 settings as the thesis prints them (sections 4.1.1-4.1.4); written out here,
#: apart from pe_utils.profiles, so an edit of the profile cannot also edit its reference
THESIS_SPEC = {
    "batch_size": 32,       # 4.1.2
    "epochs": 40,           # 4.1.2
    "epochs_small": 50,     # 4.1.2: the smallest training sets
    "lr": 0.01,             # 4.1.2
    "optimizer": "sgd",     # 4.1.3
    "momentum": 0.9,        # 4.1.3
    "gamma": 2.0,           # 4.1.3: focal loss
    "image_size": 128,      # 4.1.1
    "arch": "resnet50",     # 4.1.4
}

#: Table 6.1: the Case1 sampling rates and the thesis's names for them
TABLE_6_1 = {"9/10": "Test90", "4/5": "Test80", "3/4": "Test75", "2/3": "Test66",
             "1/2": "Test50", "1/3": "Test33", "1/4": "Test25"}


def test_the_four_profiles_exist():
    assert set(PROFILES) == {"smoke", "demo", "thesis", "rehearse"}


def test_the_rehearsal_is_the_thesis_profile_with_its_caps_only():
    """Nothing but the stated caps differs from the thesis profile, and each cap is stated."""
    thesis, rehearse = PROFILES["thesis"], PROFILES["rehearse"]
    changed = {(s, k) for s in thesis for k in thesis[s] if rehearse[s][k] != thesis[s][k]}
    assert changed == {(s, k) for s, caps in REHEARSAL_CAPS.items() for k in caps}
    stated = rehearsal_caps()
    assert len(stated) == len(changed)
    assert "case1.epochs: 40 -> 1" in stated and "pretrain.batch_size: 1000 -> 32" in stated
    for section in ("case1", "pretrain", "case3", "case2"):   # the networks and their optimisation
        for key in ("arch", "image_size", "lr", "optimizer", "momentum", "temperature", "gamma", "schedule"):
            if key in thesis[section]:
                assert rehearse[section][key] == thesis[section][key], (section, key)


def test_every_profile_has_the_same_sections_and_keys():
    reference = PROFILES["thesis"]
    for name, profile in PROFILES.items():
        assert sorted(profile) == sorted(reference), name
        for section, values in profile.items():
            assert sorted(values) == sorted(reference[section]), (name, section)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("section", sorted(PROFILES["thesis"]))
def test_resolve_none_takes_the_profiles_value(profile, section):
    expected = PROFILES[profile][section]
    assert resolve(section, profile) == expected
    assert resolve(section, profile, **{k: None for k in expected}) == expected


def test_resolve_given_value_wins():
    got = resolve("case1", "thesis", epochs=3, lr=None, arch="resnet18", augment=False, seed=0)
    assert got["epochs"] == 3 and got["arch"] == "resnet18"
    assert got["augment"] is False  # falsy but not None: still wins
    assert got["lr"] == PROFILES["thesis"]["case1"]["lr"]


def test_resolve_keeps_names_the_profile_lacks_and_copies():
    got = resolve("data", "smoke", rsna_root="/data/rsna", cache_dir=None)
    assert got["rsna_root"] == "/data/rsna" and "cache_dir" not in got
    got["patients"] = -1
    assert PROFILES["smoke"]["data"]["patients"] != -1  # the profile itself is untouched


@pytest.mark.parametrize("section, profile, match", [("case1", "laptop", "unknown profile 'laptop'"),
                                                      ("case9", "demo", "no section 'case9'")])
def test_resolve_unknown_profile_or_section_raises(section, profile, match):
    with pytest.raises(ValueError, match=match):
        resolve(section, profile)


@pytest.mark.parametrize("key", sorted(THESIS_SPEC))
def test_thesis_profile_case1_is_the_thesis(key):
    assert PROFILES["thesis"]["case1"][key] == THESIS_SPEC[key]


def test_thesis_profile_data_is_128_pixels():
    assert PROFILES["thesis"]["data"]["size"] == THESIS_SPEC["image_size"]


def test_the_seven_rates_map_to_table_6_1():
    assert SAMPLING_RATES == TABLE_6_1
    assert list(SAMPLING_RATES) == list(TABLE_6_1)  # the thesis's order, largest rate first
    assert set(SMALL_RATES) <= set(SAMPLING_RATES)


def test_the_rates_agree_with_the_published_table():
    from pe_utils.report.thesis_numbers import TABLE_6_2

    assert dict(zip(TABLE_6_2["sampling_rate"], TABLE_6_2["test_name"])) == SAMPLING_RATES


def test_threshold_pairs_are_symmetric_and_ordered():
    assert len(THESIS_THRESHOLD_PAIRS) == 5
    for upper, lower in THESIS_THRESHOLD_PAIRS:
        assert upper + lower == pytest.approx(1.0) and 0.5 < upper < 1
    uppers = [upper for upper, _ in THESIS_THRESHOLD_PAIRS]
    assert uppers == sorted(uppers)
