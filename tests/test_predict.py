"""genrelib.predict and `genrelib predict`: any file format, rate and channel count; windows; clear errors."""

import numpy as np
import pytest
import soundfile as sf

from genrelib import predict, train
from genrelib.audio import load
from genrelib.config import GENRES
from genrelib.data import Split, load_gtzan, synthetic_gtzan
from genrelib.embed import MfccBackend, embed_audio, embed_dataset
from genrelib.errors import AudioError, GenrelibWarning, WeightsError
from genrelib.model import fit_patches

from tests.classifier_helpers import TINY


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run trained on MFCC embeddings of a tiny synthetic GTZAN (3 s clips: 3 patches each)."""
    root = tmp_path_factory.mktemp("data")
    synthetic_gtzan(root, per_genre=4, seconds=3.0, seed=0)
    index = load_gtzan(root)
    tracks = embed_dataset(index, backend=MfccBackend(), cache_dir_=root / "embeddings", progress=False)
    ids = {genre: sorted(group["track_id"]) for genre, group in index.groupby("genre")}
    split = Split(train=tuple(t for g in ids.values() for t in g[:2]), valid=tuple(g[2] for g in ids.values()),
                  test=tuple(g[3] for g in ids.values()), protocol="paper", seed=0)
    run_dir = train.train_split(split, tracks, run_dir=root / "runs" / "group" / "seed0-fold0",
                                config=TINY.replace(**{"train.epochs": 10}), backend=MfccBackend())
    return run_dir, index


@pytest.fixture(scope="module")
def classifier(trained):
    return predict.load_classifier(trained[0], backend=MfccBackend())


def test_window_patches_cover_every_patch():
    embedding = np.arange(25, dtype=np.float32)[:, None]
    windows = predict.window_patches(embedding, n_patches=10)
    assert windows.shape == (3, 10, 1)
    assert [w[0, 0] for w in windows] == [0, 10, 15]  # the last window ends at the last patch
    np.testing.assert_array_equal(predict.window_patches(embedding[:10], n_patches=10)[0], embedding[:10])
    np.testing.assert_array_equal(predict.window_patches(embedding[:4], n_patches=10)[0],
                                  fit_patches(embedding[:4], n_patches=10))


def test_predicting_a_clip_is_the_network_on_its_embedding(trained, classifier):
    path = trained[1]["path"].iloc[0]
    y = load(path, sr=16000)
    expected = classifier.model.predict(fit_patches(embed_audio(y, sr=16000, backend=MfccBackend()),
                                                    n_patches=classifier.n_patches)[None], verbose=0)[0]
    np.testing.assert_allclose(predict.predict_audio(y, sr=16000, classifier=classifier), expected, atol=1e-6)
    table = predict.predict_files([path], classifier=classifier)
    np.testing.assert_allclose(table[[c for c in table.columns if c.startswith("p_")]].to_numpy()[0], expected,
                               atol=1e-6)
    assert table.loc[0, "genre"] == ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal",
                                     "pop", "reggae", "rock"][int(np.argmax(expected))]
    assert table.loc[0, "probability"] == pytest.approx(expected.max()) and table.loc[0, "error"] is None


def test_long_files_average_their_windows(trained, classifier):
    paths = trained[1]["path"].iloc[[0, 30]]
    y = np.concatenate([load(p, sr=16000) for p in paths])  # 6 s: two windows of 3 patches
    windows = predict.window_patches(embed_audio(y, sr=16000, backend=MfccBackend()), n_patches=3)
    expected = classifier.model.predict(windows, verbose=0).mean(axis=0)
    np.testing.assert_allclose(predict.predict_audio(y, sr=16000, classifier=classifier), expected, atol=1e-6)


def test_any_rate_and_channel_count(tmp_path, trained, classifier):
    y, sr = sf.read(trained[1]["path"].iloc[12], dtype="float32")
    stereo_44k = tmp_path / "stereo.flac"
    import librosa

    sf.write(stereo_44k, np.stack([librosa.resample(y, orig_sr=sr, target_sr=44100)] * 2, axis=1), 44100)
    table = predict.predict_files([trained[1]["path"].iloc[12], stereo_44k], classifier=classifier)
    assert table["error"].isna().all() and table.loc[0, "genre"] == table.loc[1, "genre"]
    probabilities = table[[c for c in table.columns if c.startswith("p_")]].to_numpy()
    np.testing.assert_allclose(probabilities[0], probabilities[1], atol=0.05)  # resampling differs slightly


def test_bad_files_raise_or_are_reported(tmp_path, classifier):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    short = tmp_path / "short.wav"
    sf.write(short, np.random.default_rng(0).normal(size=8000).astype(np.float32) * 0.1, 16000)  # 0.5 s
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    for path, message in [(empty, "empty"), (short, "shorter than"), (text, "unknown audio extension"),
                          (tmp_path / "missing.ogg", "no such file")]:
        with pytest.raises(AudioError, match=message):
            predict.predict_files([path], classifier=classifier)
    table = predict.predict_files([empty, short], classifier=classifier, on_error="report")
    assert table["genre"].isna().all() and str(empty) in table.loc[0, "error"]


def test_missing_model_or_changed_weights_are_weights_errors(tmp_path, trained):
    with pytest.raises(WeightsError, match="no trained model"):
        predict.latest_run(tmp_path)

    class Retrained(MfccBackend):
        def weights_checksum(self):
            return "other"

    with pytest.raises(WeightsError, match="weights"):
        predict.load_classifier(trained[0], backend=Retrained())


def test_latest_run_is_the_newest_complete_one(trained, tmp_path):
    import json
    import os
    import shutil

    runs = tmp_path / "runs"
    older, newer, unfinished = (shutil.copytree(trained[0], runs / "group" / name)
                                for name in ("older", "newer", "unfinished"))
    meta = json.loads((unfinished / "meta.json").read_text())
    (unfinished / "meta.json").write_text(json.dumps({**meta, "status": "running"}))
    for age, run in enumerate((unfinished, newer, older)):  # the unfinished run is the newest of all
        os.utime(run / "meta.json", (1e9 - 100 * age, 1e9 - 100 * age))
    with pytest.warns(GenrelibWarning, match="1 unfinished training run"):
        assert predict.latest_run(runs) == newer


def test_cli_prints_genre_and_probabilities(trained, tmp_path, capsys):
    from genrelib.cli import main

    good = trained[1]["path"].iloc[5]
    assert main(["predict", good, "--model", str(trained[0])]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith(good))
    expected = predict.predict_files([good], classifier=predict.load_classifier(trained[0], backend=MfccBackend()))
    words = line.split("|")[1].split()
    printed = {genre: float(value) for genre, value in zip(words[::2], words[1::2])}
    assert sorted(printed) == sorted(GENRES)  # all ten, each once, most probable first
    assert list(printed.values()) == sorted(printed.values(), reverse=True)
    for genre in GENRES:
        assert printed[genre] == pytest.approx(expected.loc[0, f"p_{genre}"], abs=5e-4)
    assert line.startswith(f"{good}: {expected.loc[0, 'genre']} ")
    missing = tmp_path / "missing.wav"
    assert main(["predict", good, str(missing), "--model", str(trained[0])]) == 1
    captured = capsys.readouterr()
    assert f"{missing}: no such file" in captured.err and good in captured.out


def test_patch_timeline_is_the_network_on_each_patch_alone(trained, classifier):
    from genrelib import plots

    y = load(trained[1]["path"].iloc[0], sr=16000)
    embedding = embed_audio(y, sr=16000, backend=MfccBackend())
    timeline = predict.patch_timeline(y, sr=16000, classifier=classifier)
    assert len(timeline) == len(embedding) == 3
    np.testing.assert_allclose(timeline["start"], np.arange(3) * MfccBackend().patch_hop_seconds)
    for i, row in enumerate(embedding):  # each patch repeated to the input length, as training pads a short clip
        alone = classifier.model.predict(np.tile(row, (classifier.n_patches, 1))[None], verbose=0)[0]
        np.testing.assert_allclose(timeline.filter(like="p_").to_numpy()[i], alone, atol=1e-6)
    ax = plots.probability_timeline(timeline, true_genre="blues")
    assert ax.get_yticklabels()[0].get_text() == "blues (true)"
    with pytest.raises(Exception, match="p_<genre>"):
        plots.probability_timeline(timeline.drop(columns="p_rock"))


def test_plot_option_writes_the_prediction_figure(trained, tmp_path, capsys):
    from PIL import Image

    from genrelib.cli import main

    good = trained[1]["path"].iloc[5]
    out = tmp_path / "figures" / "prediction.png"
    assert main(["predict", good, "--model", str(trained[0]), "--plot", str(out)]) == 0
    assert f"figure: {out}" in capsys.readouterr().out
    width, height = Image.open(out).size
    assert width > 600 and height > 200
    for extra, message in ([[good, "--plot", str(tmp_path / "two.png")], "give one FILE, not 2"],
                           [["--plot", str(tmp_path / "x.jpg")], "as .png, .pdf or .svg"],
                           [["--plot", str(tmp_path / "z.png"), "--zero-shot"], "drop --zero-shot"]):
        model = [] if "--zero-shot" in extra else ["--model", str(trained[0])]
        assert main(["predict", good, *extra, *model]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "two.png").exists() and not (tmp_path / "x.jpg").exists()


def test_prediction_figure_shows_probabilities_beside_the_patch_timeline(trained, classifier):
    from genrelib import plots

    probabilities, timeline = predict.explain_file(trained[1]["path"].iloc[0], classifier=classifier)
    y = load(trained[1]["path"].iloc[0], sr=16000)
    np.testing.assert_allclose(probabilities, predict.predict_audio(y, sr=16000, classifier=classifier), atol=1e-6)
    np.testing.assert_allclose(timeline.filter(like="p_").to_numpy(),
                               predict.patch_timeline(y, sr=16000, classifier=classifier).filter(like="p_").to_numpy(),
                               atol=1e-6)
    fig = plots.prediction_figure(probabilities, timeline, title="clip")
    bars, heat, colorbar = fig.axes
    assert [label.get_text() for label in bars.get_yticklabels()] == list(GENRES)
    assert bars.get_xlabel() == "probability (mean over windows)" and heat.get_xlabel() == "time [s]"
    assert colorbar.get_ylabel() == "probability" and fig._suptitle.get_text() == "clip"
    best = GENRES[int(np.argmax(probabilities))]
    assert bars.get_title().startswith(best)
    np.testing.assert_allclose([patch.get_width() for patch in bars.patches], probabilities)
    with pytest.raises(Exception, match="10 finite numbers"):
        plots.prediction_figure(probabilities[:3], timeline)


def test_upload_widget_predicts_real_bytes_and_names_a_bad_upload(trained, classifier):
    import datetime

    from genrelib import widgets

    path = trained[1]["path"].iloc[3]
    panel = widgets.upload_panel(classifier=classifier)
    content = open(path, "rb").read()
    # what the browser sends: ipywidgets 8's FileUpload value, one dict per file
    panel.upload.value = ({"name": "my song.wav", "type": "audio/wav", "size": len(content),
                           "last_modified": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
                           "content": memoryview(content)},)
    expected, _ = predict.explain_file(path, classifier=classifier)
    np.testing.assert_allclose(panel.probabilities, expected, atol=1e-6)
    assert bytes(panel.image.value).startswith(b"\x89PNG")
    assert f"<b>{GENRES[int(np.argmax(expected))]}</b>" in panel.message.value and "my song.wav" in panel.message.value
    for name, data, reason in (("notes.wav", b"this is not audio at all", "notes.wav: "),
                               ("notes.txt", b"text", "unknown audio extension")):
        panel.show(name, data)
        assert panel.probabilities is None and bytes(panel.image.value) == b""
        assert "cannot use this upload" in panel.message.value and reason in panel.message.value
        assert "genrelib-upload-" not in panel.message.value and "\n" not in panel.message.value
    with pytest.raises(AudioError, match=r"^notes\.wav: "):
        predict.explain_upload("notes.wav", b"RIFF junk", classifier=classifier)
