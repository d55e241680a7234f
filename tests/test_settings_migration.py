"""The settings files load to exactly the values the profiles had when they were Python dicts.

``tests/data/profiles_snapshot.json`` holds every profile, section, key and value of
:data:`pe_utils.profiles.PROFILES`, Table 6.3's :data:`pe_utils.experiments.case2.EXPERIMENTS`
and the module's constants, written from the dict-built profiles before they moved to TOML
(``python tests/test_settings_migration.py`` wrote it; rewriting it now would only compare the
files with themselves; a setting added since, such as the pretraining's ``view_*``, is added to it
with its value, every other value checked unchanged). Each value is stored with its type (:func:`encode`): ``1``, ``1.0`` and
``True`` differ, a tuple is not a list, and a dict keeps the types of its keys.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SNAPSHOT = Path(__file__).parent / "data" / "profiles_snapshot.json"


def encode(value: Any) -> Any:
    """``value`` as JSON that keeps its type. JSON itself tells ``1`` from ``1.0``, ``true``, ``"1"``
    and ``null``; a tuple becomes ``{"tuple": [...]}`` and a dict ``{"dict": [[key, value], ...]}``
    (its keys keep their type), so every JSON object is one of these two."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"no encoding for {type(value).__name__}: {value!r}")


def decode(encoded: Any) -> Any:
    """The value :func:`encode` wrote."""
    if isinstance(encoded, list):
        return [decode(v) for v in encoded]
    if isinstance(encoded, dict):
        (kind, items), = encoded.items()
        return tuple(map(decode, items)) if kind == "tuple" else {decode(k): decode(v) for k, v in items}
    return encoded


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type all the way down (``1 != 1.0 != True``, ``(1,) != [1]``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return (set(map(encode_key, a)) == set(map(encode_key, b))
                and all(same(a[k], b[k]) for k in a))
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def encode_key(key: Any) -> tuple[str, Any]:
    return type(key).__name__, key


def current() -> dict[str, Any]:
    """Everything the snapshot holds, as the package builds it now."""
    from pe_utils.experiments.case2 import EXPERIMENTS
    from pe_utils.profiles import (DEMO_CROP, PROFILES, REHEARSAL_CAPS, SAMPLING_RATES, SMALL_RATES,
                                   THESIS_THRESHOLD_PAIRS, rehearsal_caps)

    return {"PROFILES": PROFILES, "EXPERIMENTS": EXPERIMENTS, "REHEARSAL_CAPS": REHEARSAL_CAPS,
            "rehearsal_caps()": rehearsal_caps(), "SAMPLING_RATES": SAMPLING_RATES, "SMALL_RATES": SMALL_RATES,
            "THESIS_THRESHOLD_PAIRS": THESIS_THRESHOLD_PAIRS, "DEMO_CROP": DEMO_CROP}


BEFORE: dict[str, Any] = ({name: decode(v) for name, v in json.loads(SNAPSHOT.read_text()).items()}
                          if SNAPSHOT.exists() else {})
#: one test per profile and section, one per experiment, one per constant
CASES = ([("PROFILES", p, s) for p, sections in BEFORE.get("PROFILES", {}).items() for s in sections]
         + [("EXPERIMENTS", n) for n in BEFORE.get("EXPERIMENTS", {})]
         + [(name,) for name in BEFORE if name not in ("PROFILES", "EXPERIMENTS")])


def _pick(tree: Any, path: tuple) -> Any:
    for step in path:
        tree = tree[step]
    return tree


@pytest.mark.parametrize("path", CASES, ids=lambda path: "/".join(map(str, path)))
def test_every_value_loads_as_before_with_its_type(path):
    before, now = _pick(BEFORE, path), _pick(current(), path)
    if isinstance(before, dict):   # name the key that differs
        assert sorted(map(encode_key, now)) == sorted(map(encode_key, before))
        for key in before:
            assert same(now[key], before[key]), (key, now[key], before[key])
    assert same(now, before)


def test_nothing_was_added_or_removed():
    now = current()
    assert set(now) == set(BEFORE) and same(now, BEFORE)


def test_the_sections_keep_their_order():
    # a setting found in two sections is reported from the first (pe_utils.batch.params)
    from pe_utils.profiles import PROFILES

    assert {p: list(sections) for p, sections in PROFILES.items()} == {
        p: list(sections) for p, sections in BEFORE["PROFILES"].items()}


if __name__ == "__main__":   # written once, from the dict-built profiles
    SNAPSHOT.parent.mkdir(exist_ok=True)
    SNAPSHOT.write_text("{\n" + ",\n".join(f"{json.dumps(name)}: {json.dumps(encode(value))}"
                                         for name, value in current().items()) + "\n}\n")
