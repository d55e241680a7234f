"""The data a batch's runs read: which cache (and DICOM folder) they get, and making it once.

The runner decides the paths (:func:`data_paths`, through :func:`pe_utils.paths.resolve_cache_dir`,
so a notebook opened by hand reads the same cache) before planning, since a run's key hashes
the cache's settings; :func:`prepare_data` makes the cache under a file lock, so that job-array
tasks sharing it wait for one preprocessing instead of racing.
"""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from .plan import PlanError
from .run import echo


@contextmanager
def locked(path: Path):
    """An exclusive lock on ``path`` (array tasks sharing a cache wait for one preprocessing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def data_paths(args) -> tuple[Path, Path | None]:
    """``(cache_dir, rsna_root)`` the runs will get; nothing is generated here.

    Args:
        args: the parsed command line (``profile``, ``cache``, ``rsna_root``, ``cache_out``).

    Raises:
        PlanError: ``--cache`` names no folder.
    """
    from ..paths import resolve_cache_dir

    if args.cache:
        cache = Path(args.cache).resolve()
        if not cache.is_dir():
            raise PlanError(f"--cache {args.cache}: no such folder")
        return cache, None
    if args.rsna_root:
        return resolve_cache_dir(args.profile, args.cache_out, args.rsna_root)
    return resolve_cache_dir(args.profile)[0], None


def prepare_data(args, cache_dir: Path, rsna_root: Path | None) -> None:
    """Make the cache the runs will read: the user's (as is), theirs preprocessed, or the phantom's.

    Args:
        args: the parsed command line (``profile``, ``cache``, ``manifest``).
        cache_dir, rsna_root: from :func:`data_paths`.
    """
    if args.cache:
        return
    from ..data.defaults import prepare_cache

    with locked(cache_dir.parent / f".{cache_dir.name}.lock"):
        if rsna_root is not None:
            echo(f"preprocessing {rsna_root} -> {cache_dir}")
        prepare_cache(args.profile, cache_dir if rsna_root is not None else None, rsna_root,
                      manifest=args.manifest)


def prepare_dataset2_data(profile: str) -> None:
    """Make the profile's Dataset2 phantom and test set (Cases 2 and 4) once, under a lock, before
    their runs start (job-array tasks would otherwise generate it concurrently)."""
    from ..data.dataset2 import dataset2_folder, ensure_dataset2

    folder = dataset2_folder(profile)
    with locked(folder.parent / f".{folder.name}.lock"):
        ensure_dataset2(profile)
