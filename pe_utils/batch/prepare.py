"""Making the data a batch's runs read, once, before any run starts.

:mod:`pe_utils.batch.data` says where each dataset's cache is; :func:`prepare` makes what is
missing under a file lock (job-array tasks sharing it wait for one preparation instead of
racing): the profile's phantoms, or the manifests and caches of an ``--rsna-root`` folder; the
user's own caches are checked, not made. ``batch --prepare-only`` runs just this step, so a
cluster does it in a CPU job and its GPU jobs start on ready data (:func:`unprepared` says what
a run would still have to make).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from .data import DataDescription, check_caches, prepare_rsna
from .run import echo
from .state import acquire_lock


@contextmanager
def locked(path: Path):
    """An exclusive lock on ``path`` while the block runs (array tasks sharing a cache wait for
    one preprocessing); the runs' own locks are the same kind (:func:`~.state.acquire_lock`)."""
    fh = acquire_lock(path)
    try:
        yield
    finally:
        fh.close()


def prepare(desc: DataDescription, runs) -> None:
    """Make (or check) the data ``runs`` read.

    Phantom: Dataset1's phantom cache when a run reads it, and the profile's Dataset2 phantom
    with its test set when a Case2/Case4 run (or notebook 06) reads them. ``--rsna-root``: the
    three manifests and the caches the runs read, under one pseudonym key, checked disjoint by
    patient. Given caches: each finished, the test set disjoint from the others.

    Raises:
        DataError: data the batch cannot use (the message says what and how to fix it).
    """
    runs = list(runs)
    if desc.kind == "caches":
        check_caches(desc, desc.needed(runs))
        return
    if desc.kind == "rsna":
        roles = desc.needed(runs)
        if not roles:
            return
        with locked(desc.folder.parent / f".{desc.folder.name}.lock"):
            prepare_rsna(desc, roles, echo=echo)
        return
    from ..data.dataset2 import dataset2_folder, ensure_dataset2
    from ..data.defaults import prepare_cache

    if any(r.entry.reads_dataset2 for r in runs):
        folder = dataset2_folder(desc.profile)
        with locked(folder.parent / f".{folder.name}.lock"):
            ensure_dataset2(desc.profile)
    if any("cache_dir" in r.entry.declared for r in runs):
        cache = desc.caches["dataset1"]
        with locked(cache.parent / f".{cache.name}.lock"):
            prepare_cache(desc.profile)


def unprepared(desc: DataDescription, runs) -> list[str]:
    """What :func:`prepare` would still make for ``runs`` (empty when their data is ready)."""
    if desc.kind == "phantom":
        from ..data.dataset2 import dataset2_folder

        wanted = {desc.caches["dataset1"]} if any("cache_dir" in r.entry.declared for r in runs) else set()
        if any(r.entry.reads_dataset2 for r in runs):
            wanted |= {dataset2_folder(desc.profile) / "cache", dataset2_folder(desc.profile) / "cache_test"}
    else:
        wanted = {desc.caches[role] for role in desc.needed(runs)}
    return [f"no finished cache in {c}" for c in sorted(wanted) if not (c / "settings.json").is_file()]
