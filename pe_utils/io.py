"""Small file helpers every wing shares: atomic writes, sha256, JSON of numpy/pandas values.

One home for each (the package wrote each of them several times before): a writer that is
killed leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator, Mapping


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", private: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on a clean exit, fsync and rename it over ``path``.

    Args:
        path: the destination; its folder is created.
        mode: ``"w"`` (text, UTF-8) or ``"wb"``.
        private: create the file readable by its owner only (keys).

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600 if private else 0o644)
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes, private: bool = False) -> Path:
    """Write ``data`` (text or bytes) to ``path`` through :func:`atomic_open`; return ``path``."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w", private=private) as fh:
        fh.write(data)
    return Path(path)


def to_plain(value: Any) -> Any:
    """numpy / pandas scalars, arrays and frames to JSON-ready Python; NaN and inf to None."""
    import numpy as np  # lazily: the command line imports this module
    import pandas as pd

    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, pd.DataFrame):
        return [to_plain(r) for r in value.to_dict(orient="records")]
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [to_plain(v) for v in list(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """``obj`` (see :func:`to_plain`) as JSON, written atomically."""
    return write_atomic(path, json.dumps(to_plain(obj), indent=indent) + "\n")


def read_json(path: str | Path) -> dict | None:
    """The JSON object in ``path``, or None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sha256_file(*paths: str | Path) -> str:
    """Hex sha256 of one file's bytes, or of several files' names and bytes in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        if len(paths) > 1:
            digest.update(Path(path).name.encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
