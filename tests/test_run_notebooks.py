"""tools/run_notebooks.py's cleaning of an executed notebook, and tools/nbfilter.py, the git filter that applies it
on ``git add``: no audio, no TensorFlow native log, no absolute path of this machine in what is committed."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import nbfilter  # noqa: E402
import run_notebooks  # noqa: E402


def executed_notebook(data: Path) -> nbformat.NotebookNode:
    """A notebook as a kernel left it: the data root printed, shown in HTML and JSON, in a traceback, an audio
    player, TensorFlow's native log on stderr."""
    path = f"{data}/genres/blues/blues.00000.wav"
    cells = [
        new_code_cell("print(ROOT)", outputs=[new_output("stream", name="stdout", text=f"data: {data} (GENRELIB_DATA)\n")]),
        new_code_cell("index.head()", outputs=[new_output("execute_result", execution_count=2, data={
            "text/html": f"<td>{path}</td>", "text/plain": path, "application/json": {"path": path}})]),
        new_code_cell("load(bad)", outputs=[new_output("error", ename="DataError", evalue=f"{path}: unreadable",
                                                       traceback=[f"File {path}", "DataError"])]),
        new_code_cell("Audio(y)", outputs=[new_output("display_data", data={
            "text/html": '<audio controls="controls"><source src="data:audio/wav;base64,UklGRg==" /></audio>',
            "text/plain": "<IPython.lib.display.Audio object>"})]),
        new_code_cell("import tensorflow", outputs=[new_output("stream", name="stderr", text=(
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "E0000 00:00:1764640000.123456    1234 cuda_executor.cc:1228] failed call to cuInit: UNKNOWN ERROR\n"
            "a warning of the user's own\n"))]),
    ]
    return new_notebook(cells=cells)


def test_committed_outputs_carry_no_audio_no_native_log_and_no_path_of_the_machine(tmp_path, monkeypatch):
    data = tmp_path / "shared" / "gtzan_mini"
    monkeypatch.setenv("GENRELIB_DATA", str(data))
    notebook = executed_notebook(data)
    assert run_notebooks.clean(notebook, "02_augmentation") == 1
    text = nbformat.writes(notebook)
    assert str(tmp_path) not in text and "base64" not in text and "cuInit" not in text and "absl" not in text
    assert "data: $GENRELIB_DATA (GENRELIB_DATA)" in text and "a warning of the user's own" in text
    outputs = [cell.outputs for cell in notebook.cells]
    assert outputs[1][0]["data"]["application/json"] == {"path": "$GENRELIB_DATA/genres/blues/blues.00000.wav"}
    assert outputs[2][0]["traceback"][0] == "File $GENRELIB_DATA/genres/blues/blues.00000.wav"
    assert outputs[3][0]["data"] == {"text/plain": run_notebooks.AUDIO_NOTE}
    assert [cell["id"] for cell in notebook.cells] == [f"02-{n:03d}" for n in range(5)]


def filtered(text: str, name: str = "02_augmentation.ipynb") -> str:
    stdin, stdout = sys.stdin, sys.stdout
    sys.stdin, sys.stdout = io.StringIO(text), io.StringIO()
    try:
        assert nbfilter.main([name]) == 0
        return sys.stdout.getvalue()
    finally:
        sys.stdin, sys.stdout = stdin, stdout


@pytest.mark.parametrize("committed", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda path: path.stem)
def test_the_filter_is_stable_on_every_committed_notebook(committed):
    once = filtered(committed.read_text())
    assert filtered(once) == once
    assert [cell.get("id") for cell in nbformat.reads(once, 4).cells] == \
        [cell.get("id") for cell in nbformat.reads(committed.read_text(), 4).cells]  # ids kept


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_add_stores_the_cleaned_notebook_and_leaves_the_working_copy(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("GENRELIB_DATA", str(data))
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / ".gitattributes", repo / ".gitattributes")
    saved = repo / "notebooks" / "02_augmentation.ipynb"
    nbformat.write(executed_notebook(data), saved)
    before = saved.read_text()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org",
           "-c", f"filter.genrelib-notebook.clean={sys.executable} {ROOT / 'tools' / 'nbfilter.py'} %f"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    stored = subprocess.run([*git, "show", ":notebooks/02_augmentation.ipynb"], check=True, capture_output=True,
                            text=True).stdout
    assert "base64" not in stored and str(data) not in stored and run_notebooks.AUDIO_NOTE in stored
    assert saved.read_text() == before


def test_widget_progress_bars_frozen_at_their_first_frame_are_dropped_and_text_bars_kept():
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0}}
    cells = [
        new_code_cell("train()", outputs=[
            new_output("display_data", data={**widget, "text/plain": "paper runs:   0%|          | 0/3 [00:00<?, ?run/s]"}),
            new_output("display_data", data={"text/plain": "embed [musicnn-msd]:   0%|          | 0/100 [00:00<?, ?clip/s]"}),
            new_output("stream", name="stderr", text="augment: 100%|##########| 65/65 [00:03<00:00, 20.1clip/s]\n"),
            new_output("display_data", data={"text/plain": "a table: 10%|of| the 3/4 [x] and more", "text/html": "<b/>"}),
            new_output("stream", name="stdout", text="accuracy 0.93\n"),
        ]),
    ]
    notebook = new_notebook(cells=cells)
    assert run_notebooks.drop_frozen_progress_bars(notebook) == 2
    kinds = [(o["output_type"], o.get("name")) for o in notebook.cells[0]["outputs"]]
    assert kinds == [("stream", "stderr"), ("display_data", None), ("stream", "stdout")]
    assert run_notebooks.drop_frozen_progress_bars(notebook) == 0  # stable


def test_cell_seconds_from_nbclient_timestamps():
    from nbformat.v4 import new_markdown_cell

    timed = new_code_cell("# a comment first\nindex = data.load_data(ROOT)")
    timed.metadata["execution"] = {"iopub.execute_input": "2026-12-02T10:00:01.250000Z",
                                   "shell.execute_reply": "2026-12-02T10:00:04.000000Z"}
    never_run = new_code_cell("print(1)")
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), timed, never_run])
    assert run_notebooks.cell_seconds(notebook) == [{"cell": 1, "seconds": 2.75,
                                                     "source": "index = data.load_data(ROOT)"}]


def test_execute_runs_the_kernel_over_ipc_with_no_warning_on_the_console(tmp_path, capfd):
    source = tmp_path / "tiny.py"
    source.write_text("# %%\nprint(6 * 7)\n")
    target = run_notebooks.execute(source, timeout=120)
    cell = nbformat.read(target, as_version=4).cells[0]
    assert cell.outputs[0]["text"] == "42\n"
    console = capfd.readouterr()
    assert "without encryption" not in console.err, console.err  # ipykernel's warning for a TCP kernel
    assert console.out.startswith("tiny.py: executed in")
