"""Which data a run's checkpoints were made from, so a resumed run never continues on other data.

``fit(resume=True)`` compares the settings stored in ``last.pt`` with the run's, but the
settings alone do not say which cache the run read: a killed run restarted with another
``cache_dir`` and the same ``output_dir`` used to continue from weights trained on the other
data. The run's ``config`` therefore carries a fingerprint of its cache, and
:func:`check_resume` refuses checkpoints made from another cache before ``fit`` starts.

The fingerprint is cheap: the cache's ``settings.json`` ``config_sha256`` (the preprocessing
settings and the list of source files) plus the sha256 of ``index.csv`` (every image's
UIDs, position and label); ``images.npy`` is not hashed (gigabytes). The cache's folder is
stored beside it to name it in messages, and may change between runs (a moved cache).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import load_cache
from ..io import sha256_file
from ..learn import load_checkpoint
from ..learn.checkpoint import LAST  # the file fit resumes from
#: config keys that may differ when resuming: more epochs, or the same cache moved elsewhere
RESUME_IGNORE = ("epochs", "cache_dir")


def cache_fingerprint(cache: Any) -> dict[str, str | None]:
    """What identifies a cache's content, without reading its images.

    Args:
        cache: a :func:`pe_utils.load_cache` result, or its folder (str or Path).

    Returns:
        ``{"cache_config_sha256": settings.json's config_sha256 (None if absent),
        "cache_index_sha256": sha256 of index.csv}``: keys of a run's ``config``.

    Raises:
        FileNotFoundError: not a finished cache.
    """
    if isinstance(cache, (str, Path)):
        cache = load_cache(cache)
    return {"cache_config_sha256": cache.settings.get("config_sha256"),
            "cache_index_sha256": sha256_file(Path(cache.dir) / "index.csv")}


def check_resume(checkpoint_dir: str | Path, fingerprint: dict[str, Any],
                 cache_dir: str | Path | None = None) -> None:
    """Refuse to resume from checkpoints made from another cache.

    Args:
        checkpoint_dir: where ``fit`` writes ``last.pt``.
        fingerprint: :func:`cache_fingerprint` of the cache this run reads.
        cache_dir: that cache's folder, named in the message.

    Returns:
        None when there is no ``last.pt``, or when it was made from the same cache (``fit``
        then resumes), or when its config holds no fingerprint (made before fingerprints:
        its config differs, so ``fit`` starts from scratch with a warning).

    Raises:
        ValueError: ``last.pt`` was made from another cache; the message names both caches
            and how to proceed.
    """
    path = Path(checkpoint_dir) / LAST
    if not path.is_file():
        return
    old = load_checkpoint(path).get("config") or {}
    if not any(k in old for k in fingerprint):
        return
    differ = [k for k in fingerprint if old.get(k) != fingerprint[k]]
    if differ:
        raise ValueError(
            f"{path} was made from the cache {old.get('cache_dir', '<unknown folder>')} "
            f"({', '.join(f'{k}={old.get(k)}' for k in differ)}), but this run reads "
            f"{cache_dir if cache_dir is not None else '<this cache>'} "
            f"({', '.join(f'{k}={fingerprint[k]}' for k in differ)}): resuming would continue "
            "from weights trained on other data. Give another output_dir, or remove "
            f"{Path(checkpoint_dir)} to start this run afresh.")


def case1_resume(data: Any, cfg: dict, checkpoint_dir: str | Path) -> dict[str, Any]:
    """``fit``'s resume arguments for a Case1-style run, after :func:`check_resume`.

    Args:
        data: the run's :class:`pe_utils.experiments.case1.Case1Data` (its ``rate_key``,
            ``cache_dir`` and ``fingerprint``).
        cfg: from :func:`pe_utils.case1_config`.
        checkpoint_dir: where ``fit`` writes its checkpoints.

    Returns:
        ``{"checkpoint_dir", "resume": True, "config", "resume_ignore"}``: pass as
        ``fit(..., **case1_resume(data, cfg, checkpoint_dir))``. ``config`` is ``cfg`` plus
        ``sampling_rate``, ``cache_dir`` and the cache fingerprint.

    Raises:
        ValueError: ``checkpoint_dir/last.pt`` was made from another cache (:func:`check_resume`).
    """
    check_resume(checkpoint_dir, data.fingerprint, data.cache_dir)
    config = {**cfg, "sampling_rate": data.rate_key, "cache_dir": str(data.cache_dir), **data.fingerprint}
    return {"checkpoint_dir": Path(checkpoint_dir), "resume": True, "config": config,
            "resume_ignore": RESUME_IGNORE}
