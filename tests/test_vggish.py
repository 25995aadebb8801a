"""VGGish: front end against an independent numpy reference, model against an independent tf.nn forward
pass, the three weight sources on same-shape files made here, errors that leave the cache untouched, the
checked download against a local HTTP server, and the backend.

Real weights are never downloaded: every loader runs on random-valued files with the official variable
names and shapes. Expensive objects (72 M random numbers, the checkpoint, the SavedModel, one converted
cache) are module-scoped.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import soxr
import tensorflow as tf

from genrelib import vggish
from genrelib.errors import AudioError, ChecksumError, GenrelibWarning, ParameterError, WeightsError
from genrelib.storage import file_digest

ROOT = Path(__file__).resolve().parents[1]
N_PARAMS = 72_141_184


# ------------------------------------------------------------------------------------- references

def reference_log_mel_patches(y16: np.ndarray) -> np.ndarray:
    """VGGish's input written from its description, loop by loop (float64, 16 kHz input)."""
    n_frames = 1 + (len(y16) - 400) // 160
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    spectrum = np.empty((n_frames, 257))
    for i in range(n_frames):
        spectrum[i] = np.abs(np.fft.rfft(y16[i * 160: i * 160 + 400] * window, 512))
    return reference_patches(np.log(spectrum @ reference_mel_matrix() + 0.01))


def reference_mel_matrix() -> np.ndarray:
    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    edges = np.linspace(mel(125.0), mel(7500.0), 64 + 2)
    weights = np.zeros((257, 64))
    for band in range(64):
        low, center, high = edges[band: band + 3]
        for k in range(1, 257):  # bin 0 (DC) keeps weight 0
            m = mel(k * 8000.0 / 256)
            if low < m <= center:
                weights[k, band] = (m - low) / (center - low)
            elif center < m < high:
                weights[k, band] = (high - m) / (high - center)
    return weights


def reference_patches(log_mel: np.ndarray) -> np.ndarray:
    n_patches = log_mel.shape[0] // 96
    return np.stack([log_mel[p * 96:(p + 1) * 96] for p in range(n_patches)])


def reference_forward(values: dict, patches: np.ndarray) -> np.ndarray:
    """VGGish with tf.nn ops straight from the official variables (no Keras)."""
    x = tf.constant(patches[..., None], tf.float32)
    for block in ("conv1", "pool", "conv2", "pool", "conv3/conv3_1", "conv3/conv3_2", "pool",
                  "conv4/conv4_1", "conv4/conv4_2", "pool"):
        if block == "pool":
            x = tf.nn.max_pool2d(x, 2, 2, "SAME")
        else:
            x = tf.nn.relu(tf.nn.conv2d(x, values[f"vggish/{block}/weights"], 1, "SAME")
                           + values[f"vggish/{block}/biases"])
    x = tf.reshape(x, (x.shape[0], -1))
    for layer in ("fc1/fc1_1", "fc1/fc1_2"):
        x = tf.nn.relu(x @ values[f"vggish/{layer}/weights"] + values[f"vggish/{layer}/biases"])
    return (x @ values["vggish/fc2/weights"] + values["vggish/fc2/biases"]).numpy()


def chirp(sr: int, seconds: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * scipy.signal.chirp(t, f0=100, t1=seconds, f1=7000, method="logarithmic")).astype(np.float32)


def mini_clips(n: int) -> list[Path]:
    root = Path(os.environ.get("GENRELIB_DATA") or ROOT.parent / "shared" / "data" / "gtzan_mini")
    files = sorted(root.glob("genres/*/*.*"))
    if not files:
        pytest.skip("needs the GTZAN mini set: set GENRELIB_DATA")
    return files[:: max(1, len(files) // n)][:n]


def folder_state(folder: Path) -> dict:
    """Every file under ``folder`` with its size and modification time: equal means untouched."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def official_values() -> dict:
    """Random values with the official names and shapes (He-scaled so activations stay O(1))."""
    rng = np.random.default_rng(0)
    values = {}
    for name, shape in vggish.official_variables().items():
        fan_in = np.prod(shape[:-1]) if len(shape) > 1 else 1
        scale = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.1
        values[name] = (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale))
    return values


@pytest.fixture(scope="module")
def slim_checkpoint(tmp_path_factory, official_values) -> Path:
    """A single-file (V1) checkpoint like ``vggish_model.ckpt``, random values."""
    path = tmp_path_factory.mktemp("slim") / "vggish_model.ckpt"
    tf.raw_ops.Save(filename=str(path), tensor_names=list(official_values), data=list(official_values.values()))
    return path


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory, official_values) -> Path:
    path = tmp_path_factory.mktemp("hub") / "vggish_savedmodel"
    module = tf.Module()
    module.weights_list = [tf.Variable(value, name=name) for name, value in official_values.items()]
    tf.saved_model.save(module, str(path))
    return path


@pytest.fixture(scope="module")
def pca_npz(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    eigen_vectors, _ = np.linalg.qr(rng.standard_normal((128, 128)))
    path = tmp_path_factory.mktemp("pca") / "vggish_pca_params.npz"
    np.savez(path, pca_eigen_vectors=eigen_vectors, pca_means=rng.standard_normal((128, 1)))
    return path


@pytest.fixture(scope="module")
def converted(tmp_path_factory, slim_checkpoint, pca_npz) -> Path:
    """``<GENRELIB_CACHE>/weights`` converted from the slim checkpoint (with PCA)."""
    folder = tmp_path_factory.mktemp("cache") / "weights"
    vggish.convert_checkpoint(slim_checkpoint, sha256=None, pca=pca_npz, folder=folder)
    return folder


@pytest.fixture(scope="module")
def test_patches() -> np.ndarray:
    return vggish.log_mel_patches(chirp(16000, 2.0), sr=16000)


# -------------------------------------------------------------------------------------- front end

def test_mel_filterbank_matches_reference():
    np.testing.assert_allclose(vggish.mel_filterbank(), reference_mel_matrix(), atol=1e-12)
    assert np.all(vggish.mel_filterbank()[0] == 0)


@pytest.mark.parametrize("sr", [16000, 22050, 44100])
def test_log_mel_patches_matches_reference(sr):
    y = chirp(sr, 3.5)
    y16 = y.astype(np.float64) if sr == 16000 else soxr.resample(y.astype(np.float64), sr, 16000, quality="HQ")
    expected = reference_log_mel_patches(y16).astype(np.float32)
    patches = vggish.log_mel_patches(y, sr=sr)
    assert patches.dtype == np.float32 and patches.shape == expected.shape == (3, 96, 64)
    np.testing.assert_allclose(patches, expected, atol=1e-5)


@pytest.mark.parametrize("n_samples, n_patches", [
    (15_599, None), (15_600, 1), (16_000, 1), (30_959, 1), (30_960, 2), (480_000, 31),  # 400 + 160 (96k - 1)
])
def test_patch_count_and_short_clip_error(n_samples, n_patches):
    y = np.random.default_rng(0).uniform(-0.5, 0.5, n_samples).astype(np.float32)
    with pytest.raises(AudioError, match="0.96 s patch") if n_patches is None else nullcontext():
        assert vggish.log_mel_patches(y, sr=16000).shape == (n_patches, 96, 64)


def test_short_clip_error_names_duration_also_in_tf_version():
    with pytest.raises(AudioError, match=r"0\.500 s"):
        vggish.log_mel_patches_tf(np.ones(8000, np.float32) * 0.1, sr=16000)


def test_silence_is_log_offset_and_sine_peaks_in_its_band():
    silence = vggish.log_mel_patches(np.zeros(16000, np.float32), sr=16000)
    np.testing.assert_allclose(silence, np.log(0.01), rtol=1e-6)
    t = np.arange(32000) / 16000
    patches = vggish.log_mel_patches(np.sin(2 * np.pi * 1000 * t).astype(np.float32), sr=16000)
    centers_hz = 700 * np.expm1(np.linspace(1127 * np.log1p(125 / 700), 1127 * np.log1p(7500 / 700), 66)[1:-1] / 1127)
    assert np.all(patches.mean(axis=1).argmax(axis=1) == np.abs(centers_hz - 1000).argmin())


def test_bad_input_is_a_clear_error():
    with pytest.raises(ParameterError, match="sr=0"):
        vggish.log_mel_patches(np.ones(20000, np.float32), sr=0)
    with pytest.raises(AudioError, match="NaN"):
        vggish.log_mel_patches(np.full(20000, np.nan, np.float32), sr=16000)
    with pytest.raises(ParameterError, match="shape"):
        vggish.log_mel_patches_tf(np.ones((2, 2, 20000), np.float32))


def test_tf_front_end_agrees_on_synthetic_batch():
    batch = np.stack([chirp(16000, 2.5), chirp(16000, 2.5)[::-1].copy()])
    patches = vggish.log_mel_patches_tf(batch)
    assert patches.shape == (2, 2, 96, 64) and patches.dtype == np.float32
    for row, clip in zip(patches, batch):
        np.testing.assert_allclose(row, vggish.log_mel_patches(clip, sr=16000), atol=1e-3)


@pytest.mark.mini
def test_tf_front_end_agrees_on_real_clips():
    from genrelib import audio

    for path in mini_clips(3):
        y = audio.load(path, sr=None)
        native_sr = audio.info(path)["samplerate"]
        exact = vggish.log_mel_patches(y, sr=native_sr)
        fast = vggish.log_mel_patches_tf(y, sr=native_sr)
        assert fast.shape == exact.shape and len(exact) >= 30
        assert np.abs(fast - exact).max() <= 1e-3, path.name


# ------------------------------------------------------------------------------------------ model

@pytest.fixture(scope="module")
def random_model():
    return vggish.VGGish(seed=0)


def test_model_size_and_official_names(random_model):
    assert random_model.count_params() == N_PARAMS
    assert sum(int(np.prod(s)) for s in vggish.official_variables().values()) == N_PARAMS
    assert random_model.input_shape == (None, 96, 64, 1) and random_model.output_shape == (None, 128)
    mapped = {}
    for layer in random_model.layers:
        for kind, weight in zip(("kernel", "bias"), layer.weights):
            mapped[vggish.official_variable_name(layer.name, kind)] = tuple(weight.shape)
    assert mapped == vggish.official_variables()
    assert vggish.official_variable_name("conv3_2", "kernel") == "vggish/conv3/conv3_2/weights"
    assert vggish.official_variable_name("fc1_1", "bias") == "vggish/fc1/fc1_1/biases"


# ---------------------------------------------------------------------------------------- loaders

def test_checkpoint_conversion_reproduces_independent_forward(converted, official_values, slim_checkpoint,
                                                             test_patches):
    model = vggish.VGGish(weights=vggish.converted_weights_path(converted))
    got = model.predict(test_patches[..., None], verbose=0)
    expected = reference_forward(official_values, test_patches)
    assert got.shape == (2, 128) and np.std(expected) > 0.1  # a meaningful, non-degenerate output
    assert np.abs(got - expected).max() <= 1e-4
    info = vggish.converted_weights_info(converted)
    assert info["source_sha256"] == file_digest(slim_checkpoint)
    assert info["pca_sha256"]


def test_saved_model_conversion_copies_every_variable(tmp_path, saved_model_dir, official_values):
    target = vggish.convert_saved_model(saved_model_dir, folder=tmp_path)
    model = vggish.VGGish(weights=target)
    for layer in model.layers:
        for kind, weight in zip(("kernel", "bias"), layer.weights):
            np.testing.assert_array_equal(np.asarray(weight),
                                          official_values[vggish.official_variable_name(layer.name, kind)])
    assert not vggish.pca_params_path(tmp_path).exists()


def test_pca_postprocess_matches_hand_computed_values(tmp_path, pca_npz, converted):
    identity = (np.eye(128), np.zeros(128))
    embedding = np.zeros((1, 128))
    embedding[0, :6] = [-3.0, -2.0, 0.0, 1.99, 2.0, 5.0]
    quantized = vggish.postprocess(embedding, pca_params=identity)
    assert quantized.dtype == np.uint8
    # (clip(x, -2, 2) + 2) * 255 / 4, truncated: 0, 0, 127.5 -> 127, 254.36 -> 254, 255, 255; zeros -> 127
    assert quantized[0, :7].tolist() == [0, 0, 127, 254, 255, 255, 127]
    eigen_vectors, means = vggish.load_pca_params(pca_npz)
    x = np.random.default_rng(2).standard_normal((4, 128))
    expected = np.floor((np.clip((x - means) @ eigen_vectors.T, -2, 2) + 2) * 63.75)
    np.testing.assert_array_equal(vggish.postprocess(x, pca_params=vggish.pca_params_path(converted)), expected)


def real_pca_file() -> Path:
    path = ROOT.parent / "shared" / "models" / "vggish" / "vggish_pca_params.npz"
    if not path.is_file():
        pytest.skip("needs Google's vggish_pca_params.npz in shared/models/vggish")
    return path


def official_postprocess(embedding: np.ndarray, npz: Path) -> np.ndarray:
    """vggish_postprocess.Postprocessor.postprocess, written from its description, on the raw file."""
    with np.load(npz) as params:
        pca_matrix, pca_means = params["pca_eigen_vectors"], params["pca_means"].reshape(-1, 1)
    pca_applied = np.dot(pca_matrix, (embedding.T - pca_means)).T
    clipped = np.clip(pca_applied, -2.0, 2.0)
    return ((clipped - -2.0) * (255.0 / (2.0 - -2.0))).astype(np.uint8)


def test_real_pca_file_converts_and_postprocesses_as_the_official_code(tmp_path):
    real = real_pca_file()
    assert file_digest(real) == vggish.PCA_SHA256 and real.stat().st_size == vggish.PCA_BYTES
    cached = vggish.convert_pca(real, folder=tmp_path)
    assert cached == vggish.pca_params_path(tmp_path)
    with np.load(real) as raw:
        eigen_vectors, means = vggish.load_pca_params(cached)
        np.testing.assert_array_equal(eigen_vectors, raw["pca_eigen_vectors"])
        np.testing.assert_array_equal(means, raw["pca_means"].reshape(128))
    # Embeddings around the PCA mean at VGGish's scale (std ~0.35 per component), wide enough to clip.
    rng = np.random.default_rng(4)
    embedding = means + rng.normal(0.0, 0.35, (64, 128)) * rng.uniform(0.2, 3.0, (64, 1))
    expected = official_postprocess(embedding, real)
    assert expected.min() == 0 and expected.max() == 255 and len(np.unique(expected)) > 200  # clips and spreads
    np.testing.assert_array_equal(vggish.postprocess(embedding, pca_params=cached), expected)
    np.testing.assert_array_equal(vggish.postprocess(embedding, pca_params=real), expected)


def test_download_pca_checks_size_and_sha256(tmp_path, http_server):
    served, base = http_server
    (served / "vggish_pca_params.npz").write_bytes(real_pca_file().read_bytes())
    dest = tmp_path / "got" / "vggish_pca_params.npz"
    path = vggish.download_pca(dest, url=f"{base}/vggish_pca_params.npz", progress=False)  # the pinned digest
    assert path == dest and file_digest(dest) == vggish.PCA_SHA256
    dest.write_bytes(dest.read_bytes()[:-1])  # truncated by one byte: found by its size, without a download
    with pytest.raises(ChecksumError, match="size or sha256 differs"):
        vggish.download_pca(dest, url=f"{base}/missing.npz", progress=False)
    altered = bytearray(real_pca_file().read_bytes())
    altered[-100] ^= 1  # right size, one bit off: only the sha256 can tell
    (served / "altered.npz").write_bytes(bytes(altered))
    with pytest.raises(ChecksumError, match="expected " + vggish.PCA_SHA256):
        vggish.download_pca(tmp_path / "other.npz", url=f"{base}/altered.npz", progress=False)
    assert not (tmp_path / "other.npz").exists()


def test_official_checkpoint_size_is_checked_before_hashing(tmp_path):
    short = tmp_path / "vggish_model.ckpt"
    short.write_bytes(b"\0" * 1000)
    with pytest.raises(WeightsError, match=r"1,000 bytes, not the 291,108,469 of the pinned file"):
        vggish.convert_checkpoint(short)
    with pytest.raises(WeightsError, match="differs from the expected " + "3" * 64):  # no size pinned: hashed
        vggish.convert_checkpoint(short, sha256="3" * 64)


def _tiny_checkpoint(path: Path, shapes: dict, *, v2: bool = False) -> Path:
    names = list(shapes)
    values = [np.zeros(shape, np.float32) for shape in shapes.values()]
    if v2:
        tf.raw_ops.SaveV2(prefix=str(path), tensor_names=names, shape_and_slices=[""] * len(names), tensors=values)
    else:
        tf.raw_ops.Save(filename=str(path), tensor_names=names, data=values)
    return path


def _bad_sources(tmp_path: Path, slim_checkpoint: Path):
    official = vggish.official_variables()
    wrong = {name: (1,) + shape[1:] for name, shape in official.items()}
    truncated = tmp_path / "truncated.ckpt"
    with open(slim_checkpoint, "rb") as handle:
        truncated.write_bytes(handle.read(10_000_000))
    bad_pca = tmp_path / "bad_pca.npz"
    np.savez(bad_pca, pca_eigen_vectors=np.eye(64), pca_means=np.zeros((128, 1)))
    sm_partial = tmp_path / "partial_savedmodel"
    module = tf.Module()
    module.weights_list = [tf.Variable(np.zeros((3, 3, 1, 64), np.float32), name="vggish/conv1/weights")]
    tf.saved_model.save(module, str(sm_partial))
    return {
        "wrong shapes (V2 prefix)": (lambda folder: vggish.convert_checkpoint(
            _tiny_checkpoint(tmp_path / "wrong" / "model.ckpt", wrong, v2=True), sha256=None, folder=folder),
            r"shape \(1, 3, 1, 64\), expected \(3, 3, 1, 64\)"),
        "missing variables": (lambda folder: vggish.convert_checkpoint(
            _tiny_checkpoint(tmp_path / "conv1_only.ckpt", {"vggish/conv1/weights": (3, 3, 1, 64)}),
            sha256=None, folder=folder), r"vggish/fc2/biases: missing"),
        "truncated file": (lambda folder: vggish.convert_checkpoint(truncated, sha256=None, folder=folder),
                           "truncated"),
        "checksum mismatch": (lambda folder: vggish.convert_checkpoint(slim_checkpoint, sha256="0" * 64,
                                                                       folder=folder), "differs from the expected"),
        "no such file": (lambda folder: vggish.convert_checkpoint(tmp_path / "nope.ckpt", folder=folder),
                         "no such checkpoint"),
        "bad PCA": (lambda folder: vggish.convert_checkpoint(slim_checkpoint, sha256=None, pca=bad_pca,
                                                             folder=folder), r"shape \(64, 64\)"),
        "SavedModel missing variables": (lambda folder: vggish.convert_saved_model(sm_partial, folder=folder),
                                         r"vggish/conv1/biases: missing"),
        "not a SavedModel": (lambda folder: vggish.convert_saved_model(tmp_path, folder=folder),
                             "cannot load as a SavedModel"),
    }


def test_bad_sources_raise_and_leave_cache_untouched(tmp_path, converted, slim_checkpoint):
    before = folder_state(converted)
    for label, (attempt, message) in _bad_sources(tmp_path, slim_checkpoint).items():
        with pytest.raises(WeightsError, match=message):
            attempt(converted)
        assert folder_state(converted) == before, label


def test_damaged_converted_file_is_a_weights_error(tmp_path, converted):
    damaged = tmp_path / "damaged.weights.h5"
    damaged.write_bytes(vggish.converted_weights_path(converted).read_bytes()[:5000])
    with pytest.raises(WeightsError, match="damaged.weights.h5"):
        vggish.VGGish(weights=damaged)


# --------------------------------------------------------------------------------------- download

@pytest.fixture
def http_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_checks_sha256(tmp_path, http_server):
    served, base = http_server
    payload = np.random.default_rng(3).bytes(300_000)
    (served / "vggish_model.ckpt").write_bytes(payload)
    good = file_digest(served / "vggish_model.ckpt")
    dest = tmp_path / "got" / "vggish_model.ckpt"

    with pytest.raises(ChecksumError, match="expected " + "1" * 64):
        vggish.download_checkpoint(dest, url=f"{base}/vggish_model.ckpt", sha256="1" * 64, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*.part"))

    path = vggish.download_checkpoint(dest, url=f"{base}/vggish_model.ckpt", sha256=good, progress=False)
    assert path.read_bytes() == payload
    (served / "vggish_model.ckpt").unlink()  # a second call must not need the network
    assert vggish.download_checkpoint(dest, url=f"{base}/vggish_model.ckpt", sha256=good) == dest


def test_download_failure_is_a_download_error(tmp_path, http_server):
    from genrelib.errors import DownloadError

    _, base = http_server
    with pytest.raises(DownloadError, match="404"):
        vggish.download_checkpoint(tmp_path / "x.ckpt", url=f"{base}/missing.ckpt", sha256="0" * 64, progress=False)


# ---------------------------------------------------------------------------------------- backend

def test_backend_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    from genrelib import embed

    monkeypatch.setenv("GENRELIB_CACHE", str(tmp_path))
    assert not vggish.converted_weights_available()
    with pytest.raises(WeightsError, match="genrelib weights vggish --from-checkpoint"):
        vggish.VGGishBackend()
    with pytest.raises(WeightsError, match="genrelib weights vggish --download"):
        embed.get_backend("vggish")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GenrelibWarning)  # "auto" announces the offline backend it takes
        assert embed.resolve_backend("auto") != "vggish"


def test_backend_with_converted_weights(converted, official_values, monkeypatch):
    from genrelib import embed

    monkeypatch.setenv("GENRELIB_CACHE", str(converted.parent))
    assert vggish.converted_weights_available() and embed.resolve_backend("auto") == "vggish"
    backend = vggish.VGGishBackend(batch_size=16, jit_compile=False)
    y = chirp(16000, 3.2)
    expected = reference_forward(official_values, vggish.log_mel_patches(y, sr=16000))
    np.testing.assert_allclose(backend.embed(y), expected, atol=1e-3)
    assert backend.weights_checksum() == vggish.converted_weights_info(converted)["source_sha256"]
    with_pca = vggish.VGGishBackend(postprocess=True, batch_size=16, jit_compile=False)
    assert with_pca.weights_checksum().startswith(backend.weights_checksum() + "+pca:")
    np.testing.assert_array_equal(with_pca.embed(y), vggish.postprocess(backend.embed(y)))


def test_each_front_end_has_its_own_cache_version(test_patches):
    assert vggish.VGGishBackend.front_end_version == vggish.FRONT_END_TF_VERSION != vggish.FRONT_END_VERSION
    fast = vggish.log_mel_patches_tf(chirp(16000, 2.0))
    assert 0 < np.abs(fast - test_patches).max() <= 1e-3  # close, but not the same numbers: not one cache


def test_finetuning_and_embedding_name_the_same_weights(converted):
    finetune = pytest.importorskip("genrelib.finetune")
    path = vggish.converted_weights_path(converted)
    recorded = vggish.converted_weights_info(converted)["source_sha256"]
    assert vggish.weights_checksum(path) == recorded != file_digest(path)
    backbone = finetune.load_backbone("vggish", weights=path)
    backend = vggish.VGGishBackend(weights=path, folder=converted, jit_compile=False)
    assert backbone.weights_checksum == backend.weights_checksum() == recorded


def test_random_backend_batches_like_one_forward_pass(random_model, test_patches):
    backend = vggish.VGGishBackend(weights="random", seed=0, batch_size=8, jit_compile=True)
    patches = np.concatenate([test_patches] * 10)  # 20 patches: two full batches and a padded remainder
    direct = backend.model.predict(patches[..., None], verbose=0)
    got = backend.embed_patches(patches)
    assert got.shape == (20, 128) and got.dtype == np.float32
    np.testing.assert_allclose(got, direct, atol=1e-4)
    np.testing.assert_allclose(backend.model.predict(patches[..., None], verbose=0),
                               random_model.predict(patches[..., None], verbose=0), atol=1e-5)  # same seed
    assert backend.weights_checksum() == "random-glorot-seed0"
    with pytest.raises(ParameterError, match="shape"):
        backend.embed_patches(np.zeros((2, 64, 96), np.float32))


def test_xla_backend_traces_once_for_every_remainder(test_patches):
    backend = vggish.VGGishBackend(weights="random", seed=0, batch_size=8, jit_compile=True)
    plain = vggish.VGGishBackend(weights="random", seed=0, batch_size=8, jit_compile=False)
    patches = np.concatenate([test_patches] * 10)
    for n in (1, 3, 8, 13, 20):  # remainders 1, 3, 0, 5, 4: each would be a new input shape unpadded
        np.testing.assert_allclose(backend.embed_patches(patches[:n]), plain.embed_patches(patches[:n]), atol=1e-4)
    assert backend._forward.experimental_get_tracing_count() == 1


# -------------------------------------------------------------------------------------------- CLI

def test_cli_weights_vggish_and_check(tmp_path, slim_checkpoint, official_values, monkeypatch, capsys):
    from genrelib.cli import main, parse_args

    folder = tmp_path / "weights"
    args = parse_args(["weights", "vggish", "--from-checkpoint", str(slim_checkpoint), "--sha256", "none",
                       "--output-dir", str(folder), "--quiet"])
    assert args.sha256 is None and args.from_checkpoint == str(slim_checkpoint)
    assert main(["weights", "vggish", "--from-checkpoint", str(slim_checkpoint), "--sha256", "none",
                 "--output-dir", str(folder)]) == 0
    assert f"wrote {folder / 'vggish.weights.h5'}" in capsys.readouterr().out
    assert main(["weights", "vggish", "--from-checkpoint", str(slim_checkpoint), "--output-dir", str(folder)]) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["weights", "vggish", "--from-checkpoint", str(slim_checkpoint), "--output-dir", str(folder),
                 "--overwrite"]) == 2  # the default --sha256 official refuses a random checkpoint
    assert "differs from the expected 0962b191" in capsys.readouterr().err
    assert main(["weights", "vggish", "--output-dir", str(folder)]) == 1
    assert "nothing to do" in capsys.readouterr().err

    # Random weights fail the official smoke test ...
    assert main(["weights", "check", "--weights-dir", str(folder)]) == 1
    assert "FAIL" in capsys.readouterr().out
    # ... and pass when the expected statistics come from an independent forward pass of the same sine.
    sine = np.sin(2 * np.pi * 1000 * np.arange(0, 3, 1 / 16000))
    reference = reference_forward(official_values, reference_log_mel_patches(sine).astype(np.float32))
    monkeypatch.setitem(vggish.SMOKE_TEST, "embedding_mean", float(reference.mean()))
    monkeypatch.setitem(vggish.SMOKE_TEST, "embedding_std", float(reference.std()))
    assert main(["weights", "check", "--weights-dir", str(folder)]) == 0
    assert "PASS" in capsys.readouterr().out


def test_cli_weights_check_without_weights(tmp_path, capsys):
    from genrelib.cli import main, parse_args

    assert main(["weights", "check", "--weights-dir", str(tmp_path)]) == 1
    assert "no converted VGGish weights" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["weights", "vggish", "--from-checkpoint", "x", "--sha256", "abc"])
    with pytest.raises(SystemExit):
        parse_args(["weights", "vggish", "--from-checkpoint", "x", "--from-hub", "y"])


def test_plots_draw_the_arrays_they_are_given(test_patches):
    import matplotlib.pyplot as plt

    from genrelib import plots

    y = chirp(16000, 2.0)
    log_mel = vggish.log_mel_spectrogram(y, sr=16000)
    fig = plots.vggish_front_end(y, sr=16000, magnitude=vggish.stft_magnitude(y),
                                 mel_weights=vggish.mel_filterbank(), log_mel=log_mel)
    assert len(fig.axes) == 4
    np.testing.assert_array_equal(fig.axes[3].images[0].get_array(), log_mel[:300].T)
    fig = plots.vggish_patches({"blues": test_patches[0], "rock": test_patches[1]})
    assert [ax.get_title() for ax in fig.axes[:2]] == ["blues", "rock"]
    ax = plots.embedding_projection(np.array([[0, 1], [2, 3], [4, 5]]), ["jazz", "jazz", "pop"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["jazz", "pop"]
    plt.close("all")


def test_weights_status_says_where_weights_come_from(tmp_path, converted):
    assert "genrelib weights vggish --download" in vggish.weights_status(tmp_path)
    assert "vggish_model.ckpt" in vggish.weights_status(converted) and "with PCA" in vggish.weights_status(converted)
