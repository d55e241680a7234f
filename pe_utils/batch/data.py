"""One description of the data a batch reads, and which cache each of its runs gets.

The course reads three datasets (thesis 4.1.1 and 5.1.1):

- ``dataset1``: Cases 1 and 3 (notebooks 00-03, and 06's Case1 and Case3 runs);
- ``dataset2``: Cases 2 and 4 (notebooks 04, 05 and Case4's pretraining);
- ``test``: the test set of Cases 2 and 4, patients in neither Dataset1 nor Dataset2 (also the
  exams notebook 06 shows to encoders that never saw them).

A batch gets them in one of three ways, and every run reads the right one:

- nothing given: the profile's phantom (made on first use, as the course's default);
- ``--rsna-root DIR`` (an RSNA-layout folder with ``train.csv``): the batch builds the three
  manifests (:func:`pe_utils.data.manifest.build_manifest`; Dataset2 excludes Dataset1's
  exams, the test set both), preprocesses each into its own cache under one pseudonym key, and
  checks that the test set shares no patient with the other two;
- ``--cache D1 --dataset2-cache D2 --test-cache T``: three caches the user made.

A plan whose runs need a dataset that was not given is refused with the flag that gives it; a
run never falls back to the phantom when real data is given. The parameters naming caches
(``cache_dir``, ``test_cache_dir``, ``unseen_cache_dir``, ``rsna_root``) belong to the batch:
``-p`` cannot set them.

The module is longer than 300 lines because it holds one idea whole: which data a batch reads,
from its description on the command line to the caches made and checked before the first run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .plan import Entry, PlanError

#: the datasets of the course, as the batch names them
ROLES = ("dataset1", "dataset2", "test")
#: the flag that names each dataset's cache
ROLE_FLAGS = {"dataset1": "--cache", "dataset2": "--dataset2-cache", "test": "--test-cache"}
ROLE_TEXT = {"dataset1": "Dataset1 (Cases 1 and 3)", "dataset2": "Dataset2 (Cases 2 and 4)",
             "test": "the Case2/Case4 test set"}
#: the specs of :mod:`pe_utils.data.specs` that the three manifests follow
ROLE_SPECS = {"dataset1": "dataset1", "dataset2": "dataset2", "test": "case2_test"}
#: notebook parameters that name data; the batch fills them, ``-p`` may not
DATA_PARAMETERS = ("cache_dir", "test_cache_dir", "unseen_cache_dir", "rsna_root")
#: inside a ``--rsna-root`` data folder
MANIFEST_DIR = "manifests"
DESCRIPTION_FILE = "description.json"


class DataError(PlanError):
    """Data the batch cannot use as given; the message names what is missing or wrong and the fix."""


def _run_dataset(entry: Entry, params: dict[str, Any], profile: str) -> str:
    """The dataset a run trains (or pretrains) on: its ``dataset`` parameter, else the one its
    Table 6.3 experiment or its profile's ``case2`` section picks (Cases 2/4), else Dataset1."""
    dataset = params.get("dataset")
    if dataset is None and "test_cache_dir" in entry.declared and "experiment" in entry.declared:
        from ..experiments.case2 import case2_config

        dataset = case2_config(profile, params.get("experiment"))["dataset"]
    return "dataset2" if str(dataset or "dataset1").startswith("dataset2") else "dataset1"


def run_roles(entry: Entry, params: dict[str, Any], profile: str) -> dict[str, str]:
    """Which dataset each of a run's data parameters names: ``{"cache_dir": "dataset1", ...}``.

    Args:
        entry: the run's notebook (``declared`` filled); params: its parameters so far (plan
            values, ``-p`` values, grid point); profile: the batch's profile.
    """
    roles: dict[str, str] = {}
    if "cache_dir" in entry.declared:
        # notebook 06 reads Dataset1 (Case1/3's runs) beside the test set; 04/05 their dataset
        reads_case2 = "test_cache_dir" in entry.declared and "unseen_cache_dir" not in entry.declared
        roles["cache_dir"] = _run_dataset(entry, params, profile) if (
            reads_case2 or "dataset" in params) else "dataset1"
    if "test_cache_dir" in entry.declared:
        roles["test_cache_dir"] = "test"
    if "unseen_cache_dir" in entry.declared:
        roles["unseen_cache_dir"] = "test"   # exams in neither Dataset1 nor Dataset2
    return roles


@dataclass
class DataDescription:
    """Where the batch's data comes from and where each dataset's cache is (or will be).

    ``kind`` is ``"phantom"`` (nothing given), ``"caches"`` (the user's caches) or ``"rsna"``
    (``--rsna-root``: built in ``folder``). ``caches`` maps a role of :data:`ROLES` to its cache;
    the phantom's Dataset2 and test caches are the profile's own (:mod:`pe_utils.data.dataset2`).
    """
    kind: str
    profile: str
    caches: dict[str, Path] = field(default_factory=dict)
    rsna_root: Path | None = None
    folder: Path | None = None
    manifest: Path | None = None   # a user's Dataset1 manifest (--manifest), with --rsna-root
    phantom: dict[str, Any] | None = None   # the rehearsal: rsna_root is this phantom, made on first use

    # ------------------------------------------------------------------ per run
    def run_parameters(self, entry: Entry, params: dict[str, Any]) -> dict[str, Path | None]:
        """The data parameters of one run: each of its cache parameters set to its dataset's cache.

        On the phantom, Cases 2/4 get ``None`` (they make the profile's Dataset2 phantom) and
        notebook 06 reads Dataset1's phantom cache; on real data every parameter names a cache.
        """
        roles = run_roles(entry, params, self.profile)
        if self.kind == "phantom":
            if entry.reads_dataset2:
                return {}
            return {"cache_dir": self.caches["dataset1"]} if "cache_dir" in roles else {}
        # a dataset not given is left out here and refused by check_complete
        return {param: self.caches[role] for param, role in roles.items() if role in self.caches}

    def key_caches(self, entry: Entry, params: dict[str, Any]) -> list[Path]:
        """The caches whose settings enter a run's key (a remade cache makes the run stale)."""
        if self.kind == "phantom":
            if entry.reads_dataset2:
                from ..data.dataset2 import dataset2_folder

                return [dataset2_folder(self.profile) / "cache"]
            return [self.caches["dataset1"]] if "cache_dir" in entry.declared else []
        roles = run_roles(entry, params, self.profile)
        return [self.caches[role] for role in dict.fromkeys(roles.values()) if role in self.caches]

    def needed(self, runs) -> dict[str, list[str]]:
        """``{role: [run names]}``: which datasets the runs read (real data only)."""
        need: dict[str, list[str]] = {}
        for run in runs:
            for role in run_roles(run.entry, run.parameters, self.profile).values():
                need.setdefault(role, []).append(run.name)
        return need

    def check_complete(self, runs) -> None:
        """Refuse a description that lacks a dataset the runs need, naming the flag that gives it.

        Raises:
            DataError: e.g. ``--cache`` alone for a plan with Cases 2/4.
        """
        if self.kind != "caches":
            return
        need = self.needed(runs)
        missing = [role for role in ROLES if role in need and role not in self.caches]
        if not missing:
            return
        lines = []
        for role in missing:
            names = sorted({n.split("/")[0] for n in need[role]})
            lines.append(f"  {ROLE_TEXT[role]}: give {ROLE_FLAGS[role]} DIR "
                         f"(needed by {len(need[role])} runs of {', '.join(names)})")
        raise DataError("the selected runs need data that was not given:\n" + "\n".join(lines) + "\n"
                        "  or give --rsna-root DIR to build every dataset from an RSNA-layout folder, "
                        "or narrow the batch with --cases; no run falls back to the phantom when "
                        "real data is given")

    # ------------------------------------------------------------------ words
    def describe(self) -> str:
        """One line: where each dataset's cache is (the dry run's and the index's header)."""
        if self.kind == "phantom":
            return (f"the {self.profile} profile's phantom: Dataset1 {self.caches['dataset1']}; "
                    "Dataset2 and its test set in data/dataset2-" + self.profile + " (made on first use)")
        parts = [f"{role} {self.caches[role]}" for role in ROLES if role in self.caches]
        if self.kind == "rsna":
            made = " (the rehearsal's phantom, made on first use)" if self.phantom is not None else ""
            return f"RSNA folder {self.rsna_root}{made}, built into {self.folder}: " + "; ".join(parts)
        return "the given caches: " + "; ".join(parts)


def describe_data(args, profile: str, workdir: Path) -> DataDescription:
    """The data description of a command line (nothing is read or made here).

    Args:
        args: parsed ``batch`` arguments: ``cache``, ``dataset2_cache``, ``test_cache``,
            ``rsna_root``, ``cache_out`` (the ``--rsna-root`` data folder), ``manifest``.

    Raises:
        DataError: ``--rsna-root`` beside a cache flag, a named cache folder that does not
            exist, ``--manifest``/``--cache-out`` without ``--rsna-root``.
    """
    from ..paths import project_root, resolve_cache_dir

    named = {role: getattr(args, attr) for role, attr in
             (("dataset1", "cache"), ("dataset2", "dataset2_cache"), ("test", "test_cache"))
             if getattr(args, attr, None)}
    if args.rsna_root and named:
        flags = ", ".join(ROLE_FLAGS[r] for r in named)
        raise DataError(f"give --rsna-root (the batch builds every cache) or the caches ({flags}), not both")
    if (args.manifest or args.cache_out) and not args.rsna_root:
        raise DataError("--manifest and --cache-out go with --rsna-root")
    if profile == "rehearse" and not args.rsna_root and not named:
        return rehearsal_data(profile)
    if args.rsna_root:
        root = Path(args.rsna_root).resolve()
        if not (root / "train.csv").is_file():
            raise DataError(f"--rsna-root {args.rsna_root}: no train.csv there (an RSNA-layout folder holds "
                            "train.csv and train/<Study>/<Series>/<SOP>.dcm)")
        folder = (Path(args.cache_out).resolve() if args.cache_out else
                  (project_root() / "data" / f"rsna-{root.name}-{profile}").resolve())
        caches = {role: folder / f"cache-{role}" for role in ROLES}
        manifest = Path(args.manifest).resolve() if args.manifest else None
        if manifest is not None and not manifest.is_file():
            raise DataError(f"--manifest {args.manifest}: no such file")
        return DataDescription("rsna", profile, caches, rsna_root=root, folder=folder, manifest=manifest)
    if named:
        caches = {}
        for role, path in named.items():
            cache = Path(path).resolve()
            if not cache.is_dir():
                raise DataError(f"{ROLE_FLAGS[role]} {path}: no such folder")
            caches[role] = cache
        return DataDescription("caches", profile, caches)
    return DataDescription("phantom", profile, {"dataset1": resolve_cache_dir(profile)[0]})


def rehearsal_data(profile: str = "rehearse", root: Path | None = None) -> DataDescription:
    """The rehearsal's data: a phantom written in the RSNA layout (with ``train.csv``) in
    ``<root>/rsna``, built like a user's folder into ``<root>/data`` (default root:
    ``data/rehearse`` of the project); the phantom is made by :func:`pe_utils.batch.prepare.prepare`."""
    from ..paths import project_root
    from ..profiles import resolve

    base = Path(root) if root is not None else project_root() / "data" / "rehearse"
    cfg = resolve("data", profile)
    phantom = dict(patients=cfg["patients"], slices_per_patient=cfg["slices_per_patient"],
                   positive_fraction=cfg["positive_fraction"], seed=cfg["seed"], difficulty=cfg.get("difficulty"))
    folder = (base / "data").resolve()
    return DataDescription("rsna", profile, {role: folder / f"cache-{role}" for role in ROLES},
                           rsna_root=(base / "rsna").resolve(), folder=folder, phantom=phantom)


# ---------------------------------------------------------------------- making the data
def _dataset1_spec(profile: str) -> dict:
    """Dataset1's spec, scaled by the profile's ``data.dataset1`` entry where it has one."""
    from ..data.manifest import load_spec
    from ..profiles import resolve

    spec = load_spec("dataset1")
    scaled = resolve("data", profile).get("dataset1")
    if scaled:
        spec.update(n_images=scaled["n_images"], n_positive=scaled["n_positive"],
                    positive_fraction=round(scaled["n_positive"] / scaled["n_images"], 4))
        if scaled.get("tolerance"):
            spec["tolerance"] = dict(scaled["tolerance"])
    return spec


def build_manifests(desc: DataDescription, exclude_test: frozenset[str] = frozenset()) -> dict[str, Path]:
    """The three manifests of an ``--rsna-root`` description, in ``<folder>/manifests``.

    Dataset1 follows its spec (or the user's ``--manifest``); Dataset2 excludes Dataset1's
    exams; the test set excludes both, and ``exclude_test`` (exams of patients found in both
    after preprocessing). Each is written only when its content changed.

    Raises:
        ValueError: ``train.csv`` lacks a column, or is too small for a spec (the message says
            by how much).
    """
    from ..data.dataset2 import _write_if_changed, dataset2_specs
    from ..data.manifest import build_manifest, read_manifest, read_summary, read_train_csv
    from ..data.selection import PATIENT
    from ..profiles import resolve

    train = read_train_csv(desc.rsna_root / "train.csv")
    seed = resolve("data2", desc.profile)["manifest_seed"]
    spec2, spec_test = dataset2_specs(desc.profile)
    folder = desc.folder / MANIFEST_DIR
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if desc.manifest is not None:
        d1 = read_manifest(desc.manifest)
        summary1 = read_summary(desc.manifest) or {"source": str(desc.manifest), "n_images": len(d1)}
    else:
        d1, summary1 = build_manifest(train, _dataset1_spec(desc.profile), seed=seed)
    paths["dataset1"] = _write_if_changed(d1, summary1, folder / "dataset1.csv")
    d2, summary2 = build_manifest(train, spec2, seed=seed, exclude_patients=set(d1[PATIENT]))
    paths["dataset2"] = _write_if_changed(d2, summary2, folder / "dataset2.csv")
    test, summary_t = build_manifest(train, spec_test, seed=seed,
                                     exclude_patients=set(d1[PATIENT]) | set(d2[PATIENT]) | set(exclude_test))
    paths["test"] = _write_if_changed(test, summary_t, folder / "case2_test.csv")
    return paths


def shared_patients(caches: dict[str, Path]) -> dict[str, set[str]]:
    """Pseudonyms of the test set that Dataset1 or Dataset2 also holds: ``{role: {patient_id}}``.

    Raises:
        DataError: the caches were pseudonymised with different keys, so their patients cannot
            be compared.
    """
    import json

    import pandas as pd

    if "test" not in caches:
        return {}
    fingerprints = {}
    for role, cache in caches.items():
        settings = json.loads((cache / "settings.json").read_text())
        fingerprints[role] = (settings.get("pseudonym") or {}).get("key_fingerprint")
    if len(set(fingerprints.values())) > 1:
        listed = ", ".join(f"{ROLE_FLAGS[r]} {caches[r]} ({fp})" for r, fp in fingerprints.items())
        raise DataError("the caches were pseudonymised with different keys, so the batch cannot check "
                        f"that the test set shares no patient with the others: {listed}; preprocess all "
                        "three with the same --pseudonym-key, or give --rsna-root to build them")
    ids = {role: set(pd.read_csv(cache / "index.csv", usecols=["patient_id"], dtype=str)["patient_id"])
           for role, cache in caches.items()}
    return {role: ids["test"] & ids[role] for role in ("dataset1", "dataset2") if role in ids
            and ids["test"] & ids[role]}


def _preprocess(desc: DataDescription, role: str, manifest: Path, key: bytes, progress: bool) -> None:
    from ..data.preprocess import preprocess
    from ..profiles import resolve

    cfg = resolve("data", desc.profile)
    preprocess(desc.rsna_root, desc.caches[role], size=cfg["size"], channels=cfg["channels"],
               workers=cfg["workers"], manifest=manifest, progress=progress, pseudonym_key=key,
               overwrite=True)


def prepare_rsna(desc: DataDescription, roles, progress: bool = True, echo=print) -> None:
    """Build the manifests and preprocess the caches of ``roles`` (and of those the test set must
    be checked against), under one pseudonym key kept in the data folder; then check that the
    test set shares no patient with Dataset1 or Dataset2.

    A test exam whose patient (by pseudonym) is also in Dataset1 or Dataset2 is excluded and the
    test manifest rebuilt, at most three times; an overlap left after that is refused.

    Raises:
        DataError: the test set still shares patients with the other datasets.
    """
    from ..data.pseudonym import load_or_make_key

    if desc.phantom is not None:   # the rehearsal's folder: made once, remade when the generator changes
        from ..data.dataset2 import ensure_phantom
        from ..profiles import resolve

        ensure_phantom(desc.rsna_root, list(desc.caches.values()), desc.phantom,
                        resolve("data", desc.profile)["workers"], progress)
    desc.folder.mkdir(parents=True, exist_ok=True)
    key = load_or_make_key(desc.folder, None)
    roles = set(roles)
    if "test" in roles:
        roles |= {"dataset1", "dataset2"}   # the patients it must not share
    exclude: set[str] = set()
    for attempt in range(4):
        paths = build_manifests(desc, frozenset(exclude))
        for role in ROLES:
            if role in roles:
                echo(f"preprocessing {ROLE_TEXT[role]}: {paths[role].name} -> {desc.caches[role]}")
                _preprocess(desc, role, paths[role], key, progress)
        shared = shared_patients({r: desc.caches[r] for r in roles})
        if not shared:
            return
        import pandas as pd

        test_index = pd.read_csv(desc.caches["test"] / "index.csv", usecols=["patient_id", "StudyInstanceUID"],
                                 dtype=str)
        patients = set().union(*shared.values())
        studies = set(test_index.loc[test_index["patient_id"].isin(patients), "StudyInstanceUID"])
        echo(f"the test set shared {len(patients)} patient(s) with "
             f"{' and '.join(ROLE_TEXT[r] for r in shared)}: excluding their {len(studies)} exam(s)")
        if attempt == 3:
            break
        exclude |= studies
    raise DataError(f"the test set in {desc.caches['test']} still shares patients with "
                    f"{' and '.join(ROLE_TEXT[r] for r in shared)} after excluding their exams; "
                    f"check the PatientID of the exams in {desc.folder / MANIFEST_DIR / 'case2_test.csv'}")


def check_caches(desc: DataDescription, roles) -> None:
    """The user's caches: each finished, and the test set disjoint from the others by patient.

    Raises:
        DataError: a cache without ``settings.json``; different pseudonym keys; shared patients.
    """
    from ..data.cache import load_cache
    from ..data.errors import CacheError

    for role in roles:
        cache = desc.caches[role]
        if not (cache / "settings.json").is_file():
            raise DataError(f"{ROLE_FLAGS[role]} {cache}: no finished cache there (no settings.json); make it "
                            "with `python -m pe_utils preprocess --rsna-root DIR --manifest M --out "
                            f"{cache}`, or give --rsna-root to let the batch build it")
        try:   # columns, one index row per image, settings: checked before any run, not hours in
            load_cache(cache)
        except CacheError as exc:
            raise DataError(f"{ROLE_FLAGS[role]}: {exc}") from exc
    shared = shared_patients(desc.caches)
    if shared:
        detail = "; ".join(f"{len(ids)} with {ROLE_TEXT[r]} ({desc.caches[r]})" for r, ids in shared.items())
        raise DataError(f"the test set {desc.caches['test']} shares patients with the training data: {detail}; "
                        "build the test manifest with --exclude naming both training manifests "
                        "(python -m pe_utils manifest build --spec case2_test --exclude D1.csv D2.csv ...)")
