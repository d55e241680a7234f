"""The embedded default data and the one way a run gets its cache ready.

Every notebook and the batch runner call :func:`prepare_cache`. With no data given it
generates the phantom of the profile and preprocesses it (once: both steps are detected as
done and skipped); with an RSNA folder it preprocesses that folder; with a cache it uses it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..io import read_json, sha256_file, write_json
from ..paths import resolve_cache_dir
from ..profiles import resolve


def _generator_hash() -> str:
    """The phantom's code is part of its identity: a changed generator makes new data."""
    from .. import phantom

    folder = Path(phantom.__file__).parent
    return sha256_file(*sorted(folder.glob("*.py")))


def ensure_default_data(profile: str = "demo", root: str | Path | None = None,
                        progress: bool = True) -> Path:
    """Generate and preprocess the phantom of ``profile`` unless already done; return the cache.

    Idempotent and resumable: a finished step is detected by its output (``phantom.json``
    with the same sizes and generator for the phantom, ``settings.json`` with a matching
    configuration for the cache) and not redone; a stale phantom is regenerated and its cache
    deleted (same file names, new pixels: the cache could not tell).

    Args:
        profile: ``"smoke"``, ``"demo"`` or ``"thesis"`` (sizes from :mod:`pe_utils.profiles`;
            an optional ``difficulty`` in its ``data`` section goes to the phantom's generator).
        root: folder holding ``synthetic-<profile>/`` and ``cache-<profile>/``
            (default: ``data/`` of the project, see :func:`pe_utils.paths.project_root`).
        progress: show progress bars.

    Returns:
        The cache folder (absolute, as :func:`pe_utils.paths.resolve_cache_dir` gives it),
        ready for :func:`pe_utils.data.cache.load_cache`.

    Raises:
        ValueError: unknown profile.
        FileExistsError: ``<root>/synthetic-<profile>/train`` exists and is not a phantom.
    """
    from ..phantom.synthetic import generate
    from .preprocess import preprocess

    cfg = resolve("data", profile)
    cache_dir, rsna_root = resolve_cache_dir(profile, root=root)
    synth_args = dict(patients=cfg["patients"], slices_per_patient=cfg["slices_per_patient"],
                      positive_fraction=cfg["positive_fraction"], seed=cfg["seed"])
    if cfg.get("difficulty") is not None:
        # only a profile that sets it: the others keep their stamps (and caches) as they were
        synth_args["difficulty"] = cfg["difficulty"]
    stamp_value = {**synth_args, "generator_sha256": _generator_hash()}
    stamp = rsna_root / "phantom.json"
    if read_json(stamp) != stamp_value:
        # the stamp goes first, so a regeneration that is killed is redone next time;
        # generate() replaces its own old phantom and refuses any other folder
        stamp.unlink(missing_ok=True)
        if cache_dir.exists():
            shutil.rmtree(cache_dir)
        generate(rsna_root, **synth_args, workers=cfg["workers"], progress=progress)
        write_json(stamp, stamp_value)
    # a no-op when the cache is current; otherwise resumes or rebuilds it
    preprocess(rsna_root, cache_dir, size=cfg["size"], channels=cfg["channels"],
               workers=cfg["workers"], progress=progress, overwrite=True)
    return cache_dir


def prepare_cache(profile: str, cache_dir: str | Path | None = None,
                  rsna_root: str | Path | None = None, manifest: str | Path | None = None,
                  root: str | Path | None = None, progress: bool = True) -> Path:
    """Make the cache a run reads and return its folder, absolute.

    Which folder: :func:`pe_utils.paths.resolve_cache_dir`. A given cache with
    ``settings.json`` is used as it is; a given RSNA folder is preprocessed (resumably) with
    the profile's size and channels, into ``cache_dir`` when given; otherwise the default
    phantom is made (:func:`ensure_default_data`).

    Args:
        profile: the run's profile (its ``data`` section).
        cache_dir, rsna_root: what the user gave, or None.
        manifest: restricts the preprocessing of ``rsna_root`` (see
            :func:`pe_utils.data.preprocess.preprocess`).
        root: the data folder of the defaults (default ``<project>/data``).
        progress: show progress bars.

    Raises:
        FileNotFoundError: ``cache_dir`` given without ``rsna_root`` and it holds no cache,
            or ``rsna_root`` is no folder.
        PreprocessError: ``cache_dir`` holds a cache of other settings or files.
    """
    given_cache = cache_dir is not None
    cache, source = resolve_cache_dir(profile, cache_dir, rsna_root, root)
    if rsna_root is None and not given_cache:
        return ensure_default_data(profile, root, progress=progress)
    if rsna_root is None:
        if not (cache / "settings.json").exists():
            raise FileNotFoundError(f"{cache}: no preprocessed cache here (no settings.json); "
                                    "give rsna_root to build one")
        return cache
    from .preprocess import preprocess

    cfg = resolve("data", profile)
    preprocess(source, cache, size=cfg["size"], channels=cfg["channels"], workers=cfg["workers"],
               manifest=manifest, progress=progress)
    return cache
