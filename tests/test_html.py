"""pe_utils.batch.html: exported reports show each tqdm bar's end, never the bar as first drawn."""
from __future__ import annotations

import nbformat

from pe_utils.batch.html import export_html, settle_progress_bars

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


def _model(name, **state):
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
            "state": state}


def _notebook(with_state: bool = True):
    """One cell with a tqdm bar (as papermill saves it), one with another widget, one with text."""
    bar = {VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0},
           "text/plain": "fit:   0%|          | 0/112 [00:00<?, ?batch/s]"}
    slider = {VIEW: {"model_id": "slider", "version_major": 2, "version_minor": 0},
              "text/plain": "FloatSlider(value=0.75)"}
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("fit(...)", outputs=[
                    nbformat.v4.new_output("display_data", data=bar),
                    nbformat.v4.new_output("stream", name="stdout", text="done\n")]),
                nbformat.v4.new_code_cell("slider", outputs=[nbformat.v4.new_output("display_data", data=slider)])]
    if with_state:
        nb.metadata["widgets"] = {STATE: {"version_major": 2, "version_minor": 0, "state": {
            "box": _model("HBoxModel", children=["IPY_MODEL_left", "IPY_MODEL_bar", "IPY_MODEL_right"]),
            "left": _model("HTMLModel", value="fit:\u2007100%"),
            "bar": _model("FloatProgressModel", value=112.0, max=112.0, bar_style="success"),
            "right": _model("HTMLModel", value="\u2007112/112\u2007[00:42&lt;00:00,\u2007\u20072.6batch/s]"),
            "slider": _model("FloatSliderModel", value=0.9)}}}
    return nb


def test_a_bar_becomes_its_final_line():
    nb = _notebook()
    assert settle_progress_bars(nb) == 1
    first = nb.cells[0].outputs
    assert first[0]["data"] == {"text/plain": "fit: 100% 112/112 [00:42<00:00, 2.6batch/s]"}
    assert first[1]["text"] == "done\n"
    assert VIEW in nb.cells[1].outputs[0]["data"]     # not a progress bar: left alone


def test_a_bar_without_saved_state_is_dropped():
    nb = _notebook(with_state=False)
    assert settle_progress_bars(nb) == 1
    assert [o["output_type"] for o in nb.cells[0].outputs] == ["stream"]
    assert len(nb.cells[1].outputs) == 1


def test_exported_page_has_no_stale_bar(tmp_path):
    path = tmp_path / "run.ipynb"
    nbformat.write(_notebook(), path)
    export_html(path, tmp_path / "run.html")
    page = (tmp_path / "run.html").read_text()
    assert "0/112" not in page and "0%|" not in page
    assert "fit: 100% 112/112" in page


def test_figures_kept_as_json_are_drawn_by_one_inline_plotly(tmp_path):
    import plotly.graph_objects as go
    from plotly.io._base_renderers import PlotlyRenderer

    from pe_utils.batch.html import external_scripts

    nb = nbformat.v4.new_notebook()
    bundles = [PlotlyRenderer().to_mimebundle(go.Figure(go.Bar(x=[1, 2], y=[3, 4])).to_dict()) for _ in range(2)]
    nb.cells = [nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output("display_data", data=b)])
                for b in bundles]
    nbformat.write(nb, tmp_path / "figs.ipynb")
    export_html(tmp_path / "figs.ipynb", tmp_path / "figs.html")
    page = (tmp_path / "figs.html").read_text()
    assert page.count("plotly.js v") == 1 and page.count("Plotly.newPlot(") == 2
    assert page.index("plotly.js v") < page.index("Plotly.newPlot(")   # loaded before it is called
    assert external_scripts(page) == []
