"""Where things live: the one resolver of which cache a run reads, and the default folders.

The batch runner, the default-data helper and every notebook call :func:`resolve_cache_dir`,
so a notebook opened by hand and the same notebook run by the batch read the same cache.
Nothing here creates or reads data; :func:`pe_utils.data.defaults.prepare_cache` does that.
"""
from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    """The checkout holding this package (where ``data/`` and ``runs/`` go), else the cwd.

    Notebooks run with the repository root as cwd under the batch runner but with
    ``notebooks/`` as cwd in JupyterLab; anchoring paths here keeps one copy of the data.
    With a non-editable install the package sits in site-packages, so the cwd is used.
    """
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def default_paths(profile: str, root: str | Path | None = None) -> tuple[Path, Path]:
    """Where the phantom of ``profile`` and its cache live: ``(rsna_root, cache_dir)``."""
    root = Path(root) if root is not None else project_root() / "data"
    return root / f"synthetic-{profile}", root / f"cache-{profile}"


def default_output_dir(*parts: str) -> Path:
    """Where a notebook run opened by hand writes its artefacts: ``<project>/runs/...``."""
    return project_root().joinpath("runs", *parts)


def resolve_cache_dir(profile: str, cache_dir: str | Path | None = None,
                      rsna_root: str | Path | None = None,
                      root: str | Path | None = None) -> tuple[Path, Path | None]:
    """Which cache a run reads, and which DICOM folder (if any) must be preprocessed into it.

    Args:
        profile: the run's profile (its ``data`` section sets the cache's size and channels).
        cache_dir: a cache given by the user; wins over everything, and is where ``rsna_root``
            is preprocessed to when both are given.
        rsna_root: an RSNA-layout DICOM folder given by the user.
        root: the data folder of the defaults (default ``<project>/data``).

    Returns:
        ``(cache_dir, rsna_root)``: with neither given, the phantom's pair of ``profile``;
        with ``rsna_root`` alone, ``<root>/cache-<folder name>-<profile>`` beside the phantoms.
    """
    if cache_dir is not None:
        return Path(cache_dir).resolve(), Path(rsna_root).resolve() if rsna_root is not None else None
    if rsna_root is not None:
        rsna_root = Path(rsna_root).resolve()
        base = Path(root) if root is not None else project_root() / "data"
        return (base / f"cache-{rsna_root.name}-{profile}").resolve(), rsna_root
    phantom, cache = default_paths(profile, root)
    return cache.resolve(), phantom.resolve()
