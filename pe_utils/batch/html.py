"""What the batch runner writes besides executed notebooks: offline HTML reports of each run.

Kept apart from planning and running because it is all about pages: nbconvert's HTML export
made to work offline and the error banner of a failed run. ``index.html`` over every run of a
report folder is :mod:`pe_utils.batch.index_page` (:func:`~pe_utils.batch.index_page.write_index`).

Offline means no ``<script src="http...">`` anywhere: nbconvert's ``lab`` template loads
require.js, MathJax and mermaid from CDNs, and plotly's notebook renderer adds a MathJax CDN tag
to every figure. The export drops all of them. Notebooks keep each figure as its JSON only
(``application/vnd.plotly.v1+json``, :func:`pe_utils.report.style.setup_notebook`), which
nbconvert cannot draw: :func:`draw_plotly_figures` gives each one an HTML form that calls
``Plotly.newPlot``, and plotly.js is inlined once per page, in its head. (A notebook run with
the former ``"plotly_mimetype+notebook"`` renderer carries plotly.js in an output already:
then nothing is added; without require.js that bundle sets ``window.Plotly`` too.)
LaTeX in markdown stays as written (``$x$``) since MathJax is not there to typeset it.

Progress bars: tqdm draws a widget whose plain-text form is the bar as first drawn
("fit:   0%|   | 0/112"); without a widget manager that frozen text is what a page would show.
:func:`settle_progress_bars` writes each bar's final state instead (from the widget state
papermill saves), or drops the bar when no state was saved.
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

from ..io import write_atomic

_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""


class _ScriptFinder(HTMLParser):
    """Offsets of every ``<script src=...>`` start tag (script bodies are not parsed as HTML)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.found: list[tuple[tuple[int, int], str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        src = dict(attrs).get("src") if tag == "script" else None
        if src:
            self.found.append((self.getpos(), self.get_starttag_text() or "", src))


def _is_external(src: str) -> bool:
    return src.strip().lower().startswith(("http:", "https:", "//"))


def external_scripts(page: str) -> list[str]:
    """The ``src`` of every ``<script>`` in ``page`` that loads from another host."""
    finder = _ScriptFinder()
    finder.feed(page)
    finder.close()
    return [src for _, _, src in finder.found if _is_external(src)]


def strip_external_scripts(page: str) -> tuple[str, int]:
    """Remove every ``<script src="http...">...</script>`` element; return (page, count)."""
    finder = _ScriptFinder()
    finder.feed(page)
    finder.close()
    line_starts = [0]
    for line in page.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))
    cuts = []
    for (line, col), tag_text, src in finder.found:
        if not _is_external(src):
            continue
        start = line_starts[line - 1] + col
        end = page.find("</script>", start + len(tag_text))
        end = len(page) if end < 0 else end + len("</script>")
        cuts.append((start, end))
    for start, end in reversed(cuts):
        page = page[:start] + "<!-- external script dropped: offline report -->" + page[end:]
    return page, len(cuts)


_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_TQDM_TEXT = re.compile(r"\d+%\|")  # tqdm's text form: "fit:  40%|####      | 2/5 [...]"


def _progress_text(state: dict, model_id: str) -> str | None:
    """A tqdm widget's final line from the saved widget state (HBox of HTML, progress, HTML)."""
    box = state.get(model_id, {}).get("state", {})
    children = [state.get(str(c).removeprefix("IPY_MODEL_"), {}) for c in box.get("children", [])]
    names = [c.get("model_name") for c in children]
    if len(children) != 3 or names[1] not in ("FloatProgressModel", "IntProgressModel"):
        return None
    left, right = (html.unescape(str(children[i]["state"].get("value", ""))) for i in (0, 2))
    return re.sub(r"\s+", " ", f"{left} {right}".replace("\u2007", " ")).strip()


def settle_progress_bars(nb) -> int:
    """Replace every tqdm progress-bar output of ``nb`` by its final line, in place.

    Args:
        nb: an executed ``nbformat`` notebook; its ``metadata.widgets`` (saved by papermill)
            gives each bar's last state.

    Returns:
        How many bar outputs were replaced (final text) or dropped (no saved state). Other
        widget outputs are left as they are.
    """
    state = (nb.metadata.get("widgets") or {}).get("application/vnd.jupyter.widget-state+json", {})
    state = state.get("state", {})
    changed = 0
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if _WIDGET_VIEW not in data or not _TQDM_TEXT.search(str(data.get("text/plain", ""))):
                kept.append(output)
                continue
            changed += 1
            final = _progress_text(state, data[_WIDGET_VIEW].get("model_id", ""))
            if final is not None:
                output["data"] = {"text/plain": final}
                kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    return changed


_PLOTLY = "application/vnd.plotly.v1+json"


def draw_plotly_figures(nb) -> int:
    """Give every plotly figure kept as JSON an HTML form (a div and ``Plotly.newPlot``), in place.

    Args:
        nb: an executed ``nbformat`` notebook.

    Returns:
        How many figures got one; the page must then load plotly.js once (:func:`export_html`).
    """
    import plotly.io as pio

    drawn = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if _PLOTLY in data and "text/html" not in data:
                fig = dict(data[_PLOTLY])
                config = fig.pop("config", None)
                data["text/html"] = pio.to_html(fig, config=config, include_plotlyjs=False, full_html=False,
                                                validate=False)
                drawn += 1
    return drawn


def _exporter(results_only: bool):
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"offline.html.j2": _OFFLINE_TEMPLATE})],
        template_file="offline.html.j2",
        embed_images=True,           # markdown images inline too, not only outputs
        exclude_input=results_only,  # the code-hidden variant for readers who want results
        exclude_input_prompt=results_only,
        exclude_output_prompt=results_only,
    )


def export_html(ipynb: str | Path, html_path: str | Path, *, results_only: bool = False,
                title: str | None = None, source_dir: str | Path | None = None) -> int:
    """Export an executed notebook to a self-contained, offline HTML page.

    Args:
        ipynb: the executed notebook.
        html_path: the page to write (atomically).
        results_only: hide code cells' inputs (markdown and outputs stay).
        title: the page's ``<title>``; the notebook's file name by default.
        source_dir: folder of the notebook as written (markdown images are looked up, and
            inlined, from there); the executed notebook's folder by default.

    Returns:
        How many external ``<script src>`` tags were dropped (plotly's MathJax CDN tag, ...).
    """
    import nbformat

    nb = nbformat.read(str(ipynb), as_version=4)
    settle_progress_bars(nb)  # before the widget state below goes: it holds each bar's end
    # widget state would make the template load the widget manager from a CDN; the static
    # outputs the notebooks print next to their widgets are what a report shows
    nb.metadata.pop("widgets", None)
    resources = {"metadata": {"name": title or Path(ipynb).stem,
                              "path": str(source_dir or Path(ipynb).parent)}}
    figures = draw_plotly_figures(nb)
    page, _ = _exporter(results_only).from_notebook_node(nb, resources=resources)
    page, dropped = strip_external_scripts(page)
    if figures and "plotly.js v" not in page:   # once per page, before any figure calls it
        from plotly.offline import get_plotlyjs

        page = page.replace("</head>", f'<script type="text/javascript">{get_plotlyjs()}</script>\n</head>', 1)
    write_atomic(html_path, page)
    return dropped


def add_banner(ipynb: str | Path, html_text: str, tag: str) -> None:
    """Put a markdown cell of ``html_text`` at the top of the executed notebook (its reports
    show it first); a banner with the same ``tag`` from an earlier attempt is replaced."""
    import nbformat

    path = Path(ipynb)
    nb = nbformat.read(str(path), as_version=4) if path.exists() else nbformat.v4.new_notebook()
    nb.cells = [c for c in nb.cells if tag not in c.metadata.get("tags", [])]
    cell = nbformat.v4.new_markdown_cell(html_text)
    cell.metadata["tags"] = [tag]
    nb.cells.insert(0, cell)
    write_atomic(path, nbformat.writes(nb))


def add_failure_banner(ipynb: str | Path, error: dict, log_name: str) -> None:
    """Put a markdown cell saying why the run failed at the top of the executed notebook.

    papermill already adds a red banner linking to the failing cell when a cell raised; this
    one names the error itself, and covers what papermill does not flag (a dead kernel, a
    cell timeout, a kernel that would not start).
    """
    where = f" in cell [{error['cell']}]" if error.get("cell") is not None else ""
    add_banner(ipynb, f'<div style="border:2px solid #c62828; padding:0.6em; background:#ffebee">'
                      f"<b>This run failed</b>{where}: <code>{html.escape(str(error.get('ename', 'Error')))}: "
                      f"{html.escape(str(error.get('evalue', ''))[:500])}</code><br>"
                      f"The full traceback is below (and in <code>{html.escape(log_name)}</code>).</div>",
               "batch-error-banner")


def add_caps_banner(ipynb: str | Path, caps: list[str]) -> None:
    """Say at the top of a rehearsal run's page that its figures come from capped settings, and which."""
    items = "".join(f"<li><code>{html.escape(c)}</code></li>" for c in caps)
    add_banner(ipynb, '<div style="border:2px solid #ef6c00; padding:0.6em; background:#fff3e0">'
                      "<b>Rehearsal run: not a result.</b> The thesis profile with these settings capped, "
                      "so that every code path runs on few images in minutes; its figures say nothing "
                      f"about the method.<ul>{items}</ul></div>", "batch-caps-banner")
