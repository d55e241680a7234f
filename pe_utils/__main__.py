"""Command line: ``python -m pe_utils <synth|preprocess|manifest|batch|pretrain> ...``.

Each sub-command lives in the module that owns it and exposes ``main(argv) -> int``;
this file only dispatches, importing the module lazily so ``--help`` stays fast.
"""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "synth": ("pe_utils.phantom.synthetic", "write the synthetic CTPA phantom as RSNA-layout DICOM"),
    "preprocess": ("pe_utils.data.preprocess", "DICOM folder -> preprocessed image cache"),
    "manifest": ("pe_utils.data.manifest", "build or verify a data manifest"),
    "batch": ("pe_utils.batch.cli", "run the notebooks with papermill, write HTML reports"),
    "pretrain": ("pe_utils.experiments.pretrain_cli", "Case3's SimCLR pretraining (one process or torchrun/DDP)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"} or argv[0] not in COMMANDS:
        print("usage: python -m pe_utils <command> [options]\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:<11} {text}")
        if argv and argv[0] not in {"-h", "--help"}:
            print(f"\nerror: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        return 0
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
