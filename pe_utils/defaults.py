"""The embedded default data: a synthetic phantom, generated and preprocessed once.

Every notebook and the batch runner call :func:`ensure_default_data` when the user gives
no data, so the course runs end to end on a fresh machine; with real RSNA data the same
code path is skipped and the user's cache is used instead.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from .profiles import resolve


def _source_hash(module_file: str) -> str:
    return hashlib.sha256((Path(__file__).parent / module_file).read_bytes()).hexdigest()


def project_root() -> Path:
    """The checkout holding this package (where ``data/`` and ``runs/`` go), else the cwd.

    Notebooks run with the repository root as cwd under the batch runner but with
    ``notebooks/`` as cwd in JupyterLab; anchoring paths here keeps one copy of the data.
    """
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def default_paths(profile: str, root: str | Path | None = None) -> tuple[Path, Path]:
    """Where the default dataset of ``profile`` lives: ``(rsna_root, cache_dir)``."""
    root = Path(root) if root is not None else project_root() / "data"
    return root / f"synthetic-{profile}", root / f"cache-{profile}"


def default_output_dir(*parts: str) -> Path:
    """Where a notebook run opened by hand writes its artefacts: ``<project>/runs/...``."""
    return project_root().joinpath("runs", *parts)


def ensure_default_data(profile: str = "demo", root: str | Path | None = None,
                        progress: bool = True) -> Path:
    """Generate and preprocess the phantom of ``profile`` unless already done; return the cache.

    Idempotent and resumable: a finished step is detected by its output (``train.csv``
    for the phantom, ``settings.json`` with a matching configuration for the cache) and
    not redone.

    Args:
        profile: ``"smoke"``, ``"demo"`` or ``"thesis"`` (sizes from :mod:`pe_utils.profiles`).
        root: folder holding ``synthetic-<profile>/`` and ``cache-<profile>/``
            (default: ``data/`` of the project, see :func:`project_root`).
        progress: show progress bars.

    Returns:
        The cache folder, ready for :func:`pe_utils.preprocess.load_cache`.
    """
    from .preprocess import preprocess
    from .synthetic import generate

    cfg = resolve("data", profile)
    rsna_root, cache_dir = default_paths(profile, root)
    synth_args = dict(patients=cfg["patients"], slices_per_patient=cfg["slices_per_patient"],
                      positive_fraction=cfg["positive_fraction"], seed=cfg["seed"])
    # the phantom's code is part of its identity: a changed generator makes new data
    stamp_value = {**synth_args, "generator_sha256": _source_hash("synthetic.py")}
    stamp = rsna_root / "phantom.json"
    if not (stamp.exists() and json.loads(stamp.read_text()) == stamp_value):
        for stale in (rsna_root, cache_dir):
            if stale.exists():
                shutil.rmtree(stale)
        generate(rsna_root, **synth_args, workers=cfg["workers"], progress=progress)
        stamp.write_text(json.dumps(stamp_value))
    # a no-op when the cache is current; otherwise resumes or rebuilds it
    preprocess(rsna_root, cache_dir, size=cfg["size"], channels=cfg["channels"],
               workers=cfg["workers"], progress=progress, overwrite=True)
    return cache_dir
