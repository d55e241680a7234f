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


def test_resolve_copies():
    got = resolve("data", "smoke", patients=None)
    got["patients"] = -1
    assert PROFILES["smoke"]["data"]["patients"] != -1  # the profile itself is untouched


def test_resolve_refuses_a_misspelt_setting_and_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"resolve\('case1', 'thesis'\): unknown setting 'epochs_smal' "
                                         r"\(did you mean 'epochs_small'\?\); valid: arch, image_size, .*epochs_small"):
        resolve("case1", "thesis", epochs_smal=3)
    with pytest.raises(ValueError, match="unknown setting 'rsna_root'"):   # even as None: a name the code got wrong
        resolve("data", "smoke", rsna_root=None)


def test_resolve_passes_on_only_the_names_it_declares(monkeypatch):
    from pe_utils import profiles

    assert "seed" not in PROFILES["smoke"]["case3"]
    assert resolve("case3", "smoke", seed=7)["seed"] == 7     # Case3's seed, over Case1's (case3_config)
    monkeypatch.setattr(profiles, "PASSED_ON", {})
    with pytest.raises(ValueError, match="unknown setting 'seed'"):
        resolve("case3", "smoke", seed=7)


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


# ---------------------------------------------------------------- the settings files and their loader
from pe_utils.profiles import SETTINGS, load_experiments, load_profile  # noqa: E402


def _copy(tmp_path, name, edit):
    """A copy of a settings file (and of thesis.toml, which rehearse.toml inherits), edited."""
    for other in ("thesis", name):
        (tmp_path / f"{other}.toml").write_text((SETTINGS / f"{other}.toml").read_text())
    path = tmp_path / f"{name}.toml"
    edited = edit(path.read_text())
    assert edited != path.read_text(), "the edit changed nothing"
    path.write_text(edited)
    return path


def test_the_files_load_to_the_profiles():
    assert {name: load_profile(SETTINGS / f"{name}.toml") for name in PROFILES} == PROFILES


def test_a_misspelt_key_in_a_file_is_refused_with_the_valid_ones(tmp_path):
    path = _copy(tmp_path, "thesis", lambda t: t.replace("epochs_small = 50", "epochs_smal = 50"))
    with pytest.raises(ValueError, match=r"thesis.toml \[case1\]: unknown key 'epochs_smal' "
                                         r"\(did you mean 'epochs_small'\?\); valid: arch, image_size, .*epochs_small"):
        load_profile(path)


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("momentum = 0.9              # momentum 0.9 (4.1.3)\n", ""), r"\[case1\]: missing momentum"),
    (lambda t: t.replace("[case3]", "[case_3]"), r"unknown section 'case_3' \(did you mean 'case3'\?\)"),
    (lambda t: t.replace("[explain]", "[explain]\nlr = 0.1"), r"\[explain\]: unknown key 'lr'"),
    (lambda t: t.replace('    "crop",                 # the whole 128x128', '    "crop", "arch",  #'),
     r"\[case1\]: 'arch' is both written and listed in `none`"),
    (lambda t: t.replace('    "crop",                 # the whole 128x128', '    "epochs_by_rate",  #'),
     r"\[case1\]: `none` must be a list of distinct setting names"),
    (lambda t: t.replace("keep_head_layers = 0 ", "# ").replace("match_case1_epochs = false", "none = ['keep_head_layers']"),
     r"\[case3\]: 'keep_head_layers' cannot be None \(a int\)"),
    (lambda t: t.replace("epochs = 40 ", 'epochs = "40" '), r"\[case1\] epochs = '40': expected int"),
    (lambda t: t.replace("epochs = 40 ", "epochs = 40.0 "), r"\[case1\] epochs = 40.0: expected int"),
    (lambda t: t.replace("augment = true              # rotation", "augment = 1  #"), r"augment = 1: expected bool"),
    (lambda t: t.replace("snapshot_epochs = [75]", "snapshot_epochs = 75"), r"snapshot_epochs = 75: expected an array"),
    (lambda t: t.replace('reductions = ["tsne", "umap"]', 'reductions = ["tsne", 2]'), r"reductions\[1\] = 2: expected str"),
    (lambda t: t.replace("[data]", "[data]\n[data]"), r"not valid TOML"),
])
def test_a_file_that_breaks_a_rule_is_refused(tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        load_profile(_copy(tmp_path, "thesis", edit))


def test_none_is_named_in_the_none_list_and_arrays_come_back_as_tuples(tmp_path):
    demo = PROFILES["demo"]
    assert demo["case1"]["bias_prior"] is None and demo["pretrain"]["hidden"] is None
    assert type(demo["case1"]["crop"]) is tuple and demo["pretrain"]["snapshot_epochs"] == ()
    assert PROFILES["thesis"]["pretrain"]["snapshot_epochs"] == (75,) and PROFILES["smoke"]["data2"]["test_caps"] == (20, 4)
    assert [(type(k), k) for k in demo["case2"]["epochs_by_fraction"]] == [(int, 25)]   # an int key, as today
    assert demo["case1"]["epochs_by_rate"]["1/3"] == 12
    assert type(PROFILES["smoke"]["data"]["dataset1"]["tolerance"]) is dict
    # a child sets None over its parent's value through its own `none` list; an integer fills a float
    path = _copy(tmp_path, "rehearse", lambda t: t.replace("[pretrain]\n", '[pretrain]\nnone = ["hidden"]\nlr = 1\n')
                 + "\n[explain]\nn_views = 4\n")
    got = load_profile(path)
    assert got["pretrain"]["hidden"] is None and PROFILES["thesis"]["pretrain"]["hidden"] == 2048
    assert got["pretrain"]["lr"] == 1.0 and type(got["pretrain"]["lr"]) is float
    assert got["explain"]["n_views"] == 4 and got["explain"]["reductions"] == ("tsne", "umap")


def test_a_child_may_not_inherit_itself(tmp_path):
    path = _copy(tmp_path, "rehearse", lambda t: t.replace('inherits = "thesis"', 'inherits = "rehearse"'))
    with pytest.raises(ValueError, match="inherits itself"):
        load_profile(path)


def test_the_rehearsal_file_writes_only_caps():
    # rehearse.toml inherits the thesis profile: nothing but what it writes can differ
    text = (SETTINGS / "rehearse.toml").read_text()
    assert 'inherits = "thesis"' in text
    assert {s: set(c) for s, c in REHEARSAL_CAPS.items()} == {
        s: {k for k in PROFILES["thesis"][s] if PROFILES["rehearse"][s][k] != PROFILES["thesis"][s][k]}
        for s in REHEARSAL_CAPS}


def test_table_6_3_is_read_through_the_same_rules(tmp_path):
    from pe_utils.experiments.case2 import EXPERIMENTS

    path = tmp_path / "table_6_3.toml"
    path.write_text((SETTINGS / "table_6_3.toml").read_text())
    assert load_experiments(path) == EXPERIMENTS and sorted(EXPERIMENTS) == list(range(1, 14))
    text = path.read_text()
    path.write_text(text.replace("class_weights = true", "class_weight = true", 1))
    with pytest.raises(ValueError, match=r"\[experiment.7\]: unknown key 'class_weight' \(did you mean 'class_weights'"):
        load_experiments(path)
    path.write_text(text.replace("[experiment.13]\ndataset", "[experiment.13]\n#"))
    with pytest.raises(ValueError, match=r"\[experiment.13\]: missing dataset"):
        load_experiments(path)


@pytest.mark.parametrize("name", ["thesis", "demo", "table_6_3"])
def test_every_value_names_its_source_or_says_it_is_our_choice(name):
    """A setting's line (or the comment above it) cites the thesis (a section, a table, an equation,
    an appendix) or says *(our choice)*; history (dates, issue numbers) belongs in the docs."""
    import re

    lines = (SETTINGS / f"{name}.toml").read_text().splitlines()
    source = re.compile(r"\d\.\d|Table|Eq\.|Appendix|Chapter|\(our choice|our choices?\)")
    for i, line in enumerate(lines):
        setting = re.match(r"\s*(\w+ = |\"\w+\",)", line)
        if not setting or name == "table_6_3" or line.startswith("none = ["):
            continue
        above = lines[i - 1] if lines[i - 1].startswith("#") else ""
        assert source.search(line.partition("#")[2] or above), f"{name}.toml:{i + 1}: {line}"
    for header in (lines[i - 1] for i, line in enumerate(lines) if line.startswith("[experiment.")):
        assert re.match(r"# Table (6\.3|C\.1) row \d+", header), header


@pytest.mark.parametrize("path", sorted(SETTINGS.glob("*.toml")), ids=lambda p: p.name)
def test_the_settings_keep_no_history(path):
    import re

    assert not re.search(r"20\d\d-\d\d|issue \d|generator \d|measured", path.read_text(), re.I)


def test_the_settings_ship_as_package_data():
    import tomllib
    from fnmatch import fnmatch
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["pe_utils"]
    assert all(any(fnmatch(f"settings/{p.name}", pattern) for pattern in patterns) for p in SETTINGS.glob("*.toml"))
