"""Writes the tiny notebooks of tests/test_batch.py (run it after editing them here).

    .venv/bin/python tests/data/make_notebooks.py
"""
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent
PLOTLY = ('import plotly.io as pio\nimport plotly.graph_objects as go\n'
          'pio.renderers.default = "plotly_mimetype+notebook"  # as the course notebooks do')


def params(src: str):
    return nbf.v4.new_code_cell(src, metadata={"tags": ["parameters"]})


NOTEBOOKS = {
    # writes metrics.json and shows a plotly figure; records its device, cache, cwd and threads
    "nb_quick": [
        nbf.v4.new_markdown_cell("# Quick\nA figure and a metrics file; an image beside the notebook: "
                                 "![a dot](dot.png)"),
        nbf.v4.new_code_cell("import json, os\nfrom pathlib import Path\n" + PLOTLY),
        params('profile = "demo"   # the runner passes the batch profile\n'
               'cache_dir = None   # the batch passes its cache\n'
               'output_dir = None  # where metrics.json goes\n'
               'scale = 1.0        # a parameter -p can set'),
        nbf.v4.new_code_cell("fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]))\nfig.show()"),
        nbf.v4.new_code_cell(
            'Path(output_dir).mkdir(parents=True, exist_ok=True)\n'
            'metrics = {"auc": 0.5 + 0.1 * scale, "f1": 0.25, "profile": profile, "cache_dir": cache_dir,\n'
            '           "device": os.environ.get("CUDA_VISIBLE_DEVICES"), "cwd": os.getcwd(),\n'
            '           "threads": os.environ.get("OMP_NUM_THREADS")}\n'
            '_ = Path(output_dir, "metrics.json").write_text(json.dumps(metrics))'),
    ],
    # a grid over sampling_rate; reads its upstream run's output_dir (an "inputs" dependency)
    "nb_grid": [
        nbf.v4.new_code_cell("import json\nfrom fractions import Fraction\nfrom pathlib import Path"),
        params('profile = "demo"\nsampling_rate = "1/3"\noutput_dir = None\nupstream_dir = None'),
        nbf.v4.new_code_cell(
            'upstream = json.loads(Path(upstream_dir, "metrics.json").read_text())\n'
            'Path(output_dir).mkdir(parents=True, exist_ok=True)\n'
            'metrics = {"auc": float(Fraction(sampling_rate)), "oracle_workload_pct": 40.0,\n'
            '           "upstream_auc": upstream["auc"], "sampling_rate": sampling_rate}\n'
            '_ = Path(output_dir, "metrics.json").write_text(json.dumps(metrics))'),
    ],
    # fails in its second code cell
    "nb_fail": [
        params('profile = "demo"\noutput_dir = None'),
        nbf.v4.new_code_cell("x = 1"),
        nbf.v4.new_code_cell('raise ValueError("deliberate failure for the test")'),
    ],
    # depends on nb_fail in the plan
    "nb_after": [
        params('profile = "demo"\noutput_dir = None'),
        nbf.v4.new_code_cell("print('ran after the failing notebook')"),
    ],
    # kills its own kernel: the runner retries once, then reports it
    "nb_die": [
        params('profile = "demo"'),
        nbf.v4.new_code_cell("import os\nos._exit(1)"),
    ],
    # reads every run's metrics.json of the batch folder
    "nb_summary": [
        nbf.v4.new_code_cell("import json\nfrom pathlib import Path"),
        params('profile = "demo"\nreports_dir = None\noutput_dir = None'),
        nbf.v4.new_code_cell(
            'found = sorted(str(p.relative_to(reports_dir)) for p in Path(reports_dir).glob("*/*/metrics.json"))\n'
            'Path(output_dir).mkdir(parents=True, exist_ok=True)\n'
            '_ = Path(output_dir, "metrics.json").write_text(json.dumps({"n_runs": len(found), "runs": found}))'),
    ],
    # sleeps far longer than the test's --cell-timeout
    "nb_slow": [
        params('profile = "demo"'),
        nbf.v4.new_code_cell("import time\ntime.sleep(120)"),
    ],
    # refused: no cell tagged parameters
    "nb_noparams": [
        nbf.v4.new_code_cell('profile = "demo"'),
    ],
    # refused: a parameters cell without profile
    "nb_noprofile": [
        params("output_dir = None"),
    ],
}



def png(path: Path, size: int = 4) -> None:
    """A tiny gray PNG: the markdown image the quick notebook shows."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + bytes([128] * size) for _ in range(size))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


if __name__ == "__main__":
    png(HERE / "dot.png")
    for name, cells in NOTEBOOKS.items():
        nb = nbf.v4.new_notebook(cells=cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nbf.write(nb, HERE / f"{name}.ipynb")
        print("wrote", HERE / f"{name}.ipynb")
