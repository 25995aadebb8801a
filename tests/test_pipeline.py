"""`genrelib run` end to end on a tiny synthetic GTZAN, and `--figures-only` redrawing without training."""

import json

import pytest

from genrelib.cli import main, parse_args
from genrelib.data import synthetic_gtzan

FIGURES = ["fig1_waveforms", "fig3_mel_spectrogram", "fig4_cnn_architecture", "fig5_training_curves",
           "fig6_confusion_matrix"]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """One `genrelib run` (kfold, 2 folds, 2 epochs, MFCC backend, no augmentation) into a temporary output."""
    root = synthetic_gtzan(tmp_path_factory.mktemp("data"), per_genre=4, seconds=2.0, seed=0)
    output = tmp_path_factory.mktemp("output")
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("GENRELIB_OUTPUT", str(output))
    monkeypatch.setenv("GENRELIB_CACHE", str(output / "cache"))
    arguments = ["--data", str(root), "--backend", "mfcc", "--no-augment", "--protocol", "kfold",
                 "--set", "train.folds=2", "--set", "train.valid_size=0.25", "--epochs", "2", "--quiet"]
    code = main(["run", *arguments])
    yield code, output, arguments
    monkeypatch.undo()


def test_run_writes_results_with_baseline_and_figures(pipeline_run):
    code, output, _ = pipeline_run
    assert code == 0
    rows = json.loads((output / "results" / "table3_accuracy.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["paper CNN", "clip-mean + logistic regression"]
    assert {(r["protocol"], r["backend"], r["runs"]) for r in rows} == {("kfold (2-fold)", "mfcc", 2)}
    assert rows[0]["data"].endswith("(40 tracks)")
    for name in FIGURES + ["fig2_genre_distribution"]:
        assert (output / "figures" / f"{name}.png").exists() and (output / "figures" / f"{name}.pdf").exists()
    readme = (output / "figures" / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in FIGURES) and "kfold (2-fold), mfcc" in readme


def test_run_writes_intervals_and_the_paired_comparison_with_the_baseline(pipeline_run):
    _, output, _ = pipeline_run
    intervals = json.loads((output / "results" / "intervals.json").read_text())["rows"]
    assert [r["model"] for r in intervals] == ["paper CNN", "clip-mean + logistic regression"]
    assert all(r["low"] <= r["accuracy"] <= r["high"] and r["n_tracks"] == 40 for r in intervals)
    paired = json.loads((output / "results" / "paired.json").read_text())["rows"]
    assert len(paired) == 1 and paired[0]["versus"] == "clip-mean + logistic regression"
    assert paired[0]["first"] == pytest.approx(intervals[0]["accuracy"])
    assert paired[0]["second"] == pytest.approx(intervals[1]["accuracy"])
    assert 0 < paired[0]["p_value"] <= 1


def test_run_of_another_protocol_than_the_configured_one_leaves_the_figures(pipeline_run, capsys):
    _, output, arguments = pipeline_run
    stamps = {p: p.stat().st_mtime_ns for p in (output / "figures").glob("*.png")}
    without_protocol = [a for a in arguments if a not in ("--protocol", "kfold")]
    assert main(["run", "--protocols", "kfold", *without_protocol]) == 0
    assert "figures: not redrawn (they show the configured protocol 'paper'" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (output / "figures").glob("*.png")} == stamps


def test_no_figures_trains_and_leaves_the_figures(pipeline_run, capsys, tmp_path):
    _, output, arguments = pipeline_run
    stamps = {p: p.stat().st_mtime_ns for p in (output / "figures").glob("*.png")}
    before = (output / "results" / "table3_accuracy.json").stat().st_mtime_ns
    # A second seed, in a runs folder of its own (the figure tests below count the fixture's runs): a new row.
    assert main(["run", "--no-figures", "--seeds", "2", "--runs-dir", str(tmp_path / "runs"), *arguments]) == 0
    assert "figures: not redrawn (--no-figures)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (output / "figures").glob("*.png")} == stamps
    assert (output / "results" / "table3_accuracy.json").stat().st_mtime_ns > before


def test_figures_only_redraws_without_training(pipeline_run, capsys):
    code, output, arguments = pipeline_run
    runs = sorted((output / "runs").rglob("meta.json"))
    stamps = [p.stat().st_mtime_ns for p in runs]
    for name in FIGURES:
        (output / "figures" / f"{name}.png").unlink()
    assert main(["run", "--figures-only", *arguments]) == 0
    assert all((output / "figures" / f"{name}.png").exists() for name in FIGURES)
    assert sorted((output / "runs").rglob("meta.json")) == runs
    assert [p.stat().st_mtime_ns for p in runs] == stamps


def test_figures_come_from_the_configured_settings_not_from_a_newer_experiment(pipeline_run):
    _, output, arguments = pipeline_run
    experiment = [a if a != "2" or arguments[i - 1] != "--epochs" else "1" for i, a in enumerate(arguments)]
    assert main(["run", *experiment]) == 0  # a newer group of the same protocol, trained 1 epoch
    notes = json.loads((output / "figures" / "figures.json").read_text())
    newest = notes["fig4_cnn_architecture"]
    assert main(["run", "--figures-only", *arguments]) == 0
    notes = json.loads((output / "figures" / "figures.json").read_text())
    configured = {json.loads((p.parent / "config.json").read_text())["train"]["epochs"]: p.parent.parent.name
                  for p in (output / "runs").rglob("meta.json")}
    assert sorted(configured) == [1, 2]
    assert configured[1] in newest  # the experiment had drawn them from its own runs
    assert configured[2] in notes["fig4_cnn_architecture"] and configured[1] not in notes["fig4_cnn_architecture"]


def test_figures_only_without_runs_is_a_clear_error(pipeline_run, tmp_path, capsys):
    _, _, arguments = pipeline_run
    assert main(["run", "--figures-only", "--runs-dir", str(tmp_path), *arguments]) == 2
    assert "no complete runs of protocol 'kfold'" in capsys.readouterr().err


def test_run_parses_protocols_and_config():
    args = parse_args(["run", "--protocols", "paper", "kfold", "--config", "c.json", "--figures-only"])
    assert args.protocols == ["paper", "kfold"] and args.config == "c.json" and args.figures_only
    with pytest.raises(SystemExit):
        parse_args(["run", "--protocols", "random"])
