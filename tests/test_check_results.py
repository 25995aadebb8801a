"""tools/check_results.py's comparison, on copies of the committed tables with one number changed: losses may move
by the documented tolerance (another CPU's rounding), everything counted from predictions must be equal."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_results", ROOT / "tools" / "check_results.py")
check_results = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = check_results
_spec.loader.exec_module(check_results)

RUN = {"model": "paper CNN", "backend": "musicnn-msd", "protocol": "paper", "augmentation": "off", "run": "seed0-fold0"}
COMMITTED_LOSS = "0.0948"  # results/per_run.md, the row above: the test fails loudly if the committed tables change


@pytest.fixture
def tables(tmp_path):
    """Two copies of the committed tables: ``committed`` and ``regenerated``, equal until a test edits one."""
    copies = {}
    for name in ("committed", "regenerated"):
        copies[name] = tmp_path / name
        copies[name].mkdir()
        for stem in check_results.TABLES:
            for suffix in (".json", ".md"):
                shutil.copy(ROOT / "results" / f"{stem}{suffix}", copies[name])
    return copies


def _edit_run(folder: Path, **values) -> None:
    """Change RUN's row of per_run.json to ``values`` and its Markdown line's loss/accuracy cells to match."""
    path = folder / "per_run.json"
    table = json.loads(path.read_text())
    (row,) = [r for r in table["rows"] if all(r[k] == v for k, v in RUN.items())]
    row.update(values)
    path.write_text(json.dumps(table))
    md = folder / "per_run.md"
    old_line = next(line for line in md.read_text().splitlines()
                    if line.startswith("| paper CNN |") and "| musicnn-msd | off | seed0-fold0 |" in line)
    cells = old_line.strip("|").split("|")
    cells[-1], cells[-2] = f" {row['loss']:.4f} ", f" {row['accuracy']:.4f} "
    md.write_text(md.read_text().replace(old_line, "|" + "|".join(cells) + "|"))


def test_identical_tables_have_no_differences(tables):
    found, largest = check_results.differences(tables["regenerated"], tables["committed"])
    assert (found, largest) == ([], 0.0)


def test_the_fixture_row_is_the_committed_one(tables):
    assert f"| 25 | 0.9600 | {COMMITTED_LOSS} |" in (tables["committed"] / "per_run.md").read_text()


def test_a_loss_within_the_tolerance_passes_and_is_reported(tables):
    committed = json.loads((tables["committed"] / "per_run.json").read_text())["rows"]
    loss = next(r["loss"] for r in committed if all(r[k] == v for k, v in RUN.items()))
    _edit_run(tables["regenerated"], loss=loss - 0.0012)  # what an AVX-512 Xeon gave
    found, largest = check_results.differences(tables["regenerated"], tables["committed"])
    assert found == []
    assert largest == pytest.approx(0.0012, abs=1e-9)


def test_a_loss_beyond_the_tolerance_is_a_difference_in_json_and_markdown(tables):
    _edit_run(tables["regenerated"], loss=float(COMMITTED_LOSS) + 2 * check_results.LOSS_TOLERANCE)
    found, _ = check_results.differences(tables["regenerated"], tables["committed"])
    assert len(found) == 2
    assert found[0].startswith("per_run.json") and "more than 0.01 apart" in found[0]
    assert found[1].startswith("per_run.md") and "seed0-fold0" in found[1]


def test_any_change_of_accuracy_is_a_difference(tables):
    _edit_run(tables["regenerated"], accuracy=0.92)  # one test track of 25
    found, _ = check_results.differences(tables["regenerated"], tables["committed"])
    assert [line.split(" ")[0] for line in found] == ["per_run.json", "per_run.md:"]
    assert "accuracy 0.92 vs 0.96" in found[0]


def test_a_row_missing_from_the_committed_tables_is_a_difference(tables):
    path = tables["committed"] / "table3_accuracy.json"
    table = json.loads(path.read_text())
    table["rows"] = table["rows"][1:]
    path.write_text(json.dumps(table))
    found, _ = check_results.differences(tables["regenerated"], tables["committed"])
    assert len(found) == 1 and found[0].startswith("table3_accuracy.json") and found[0].endswith("not committed")


def test_markdown_loss_cells_compare_each_number():
    row = {"accuracy (ours)": "0.9467 ± 0.0189", "loss (ours)": "0.1819 ± 0.0627", "loss (paper)": "0.7544"}
    assert check_results._same_markdown_row(row, {**row, "loss (ours)": "0.1823 ± 0.0622"})
    assert not check_results._same_markdown_row(row, {**row, "loss (ours)": "0.1823 ± 0.0922"})
    assert not check_results._same_markdown_row(row, {**row, "loss (ours)": "0.1819"})
    assert not check_results._same_markdown_row(row, {**row, "loss (paper)": "0.7545"})
    assert not check_results._same_markdown_row(row, {**row, "accuracy (ours)": "0.9467 ± 0.0190"})


def test_perturb_embeddings_multiplies_by_seeded_noise_of_the_given_scale(tmp_path):
    rng = np.random.default_rng(7)
    original = rng.standard_normal((400, 50)).astype(np.float32) + 3
    timestamps = np.arange(400, dtype=np.float32) * 0.5
    paths = []
    for name in ("a", "b"):
        paths.append(tmp_path / f"{name}.npz")
        np.savez(paths[-1], embedding=original, timestamps=timestamps)
    check_results.perturb_embeddings([paths[0]], scale=1e-3, seed=2)
    check_results.perturb_embeddings([paths[1]], scale=1e-3, seed=2)
    with np.load(paths[0]) as first, np.load(paths[1]) as second:
        assert first["embedding"].dtype == np.float32
        np.testing.assert_array_equal(first["timestamps"], timestamps)
        np.testing.assert_array_equal(first["embedding"], second["embedding"])  # same seed, same draw
        relative = first["embedding"] / original - 1
    assert abs(relative.std() - 1e-3) < 1e-4 and abs(relative.mean()) < 1e-4
