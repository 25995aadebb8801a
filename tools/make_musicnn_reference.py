"""Write ``tests/data/musicnn_reference.npz``: outputs of the ORIGINAL musicnn TF1 graphs, for parity tests.

Usage::

    python tools/make_musicnn_reference.py [--data GTZAN_ROOT] [--output tests/data/musicnn_reference.npz]

It builds each of the four networks with the installed package's own ``musicnn.models.define_model``
(TF1 graph mode, legacy tf.keras layers, ``tf.compat.v1.train.Saver`` restore: exactly as upstream's
extractor does) and records, by output *position* (upstream's extractor mislabels them, musicnn#20):

- ``input`` [shape=(2, 187, 96)]: log-mel patches of :func:`reference_signal`, a deterministic synthetic
  signal (chirp, harmonic tones, pulses, pseudo-noise: no recorded audio is stored), computed here
  independently of genrelib; and ``<model>__<layer>`` for every layer genrelib exposes.
- ``<track>__<model>__<layer>``: the default embedding layer and the tags of every patch of two real
  GTZAN clips (metal.00003, classical.00001), loaded as upstream does (``librosa.load(sr=16000)``). Only
  network outputs are stored, from which the audio cannot be reconstructed.

The log-mel is computed in float32 (upstream casts to float16, which overflows under NumPy 2). Run it in
its own process: it switches TensorFlow to graph mode and legacy Keras.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000
PATCH_FRAMES = 187
N_SYNTHETIC_PATCHES = 2
REAL_TRACKS = ("metal.00003", "classical.00001")
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
#: Position of each exposed layer among define_model's outputs (see musicnn/models.py).
OUTPUT_POSITIONS = {
    "musicnn": {"logits": 0, "mean_pool": 6, "max_pool": 7, "penultimate": 8},
    "vgg": {"logits": 0, "pool4": 4, "pool5": 5},
}
DEFAULT_LAYER = {"musicnn": "penultimate", "vgg": "pool5"}


def reference_signal() -> np.ndarray:
    """A deterministic 6.2 s test signal at 16 kHz (float32): no random generator, only closed forms.

    A rising chirp, a harmonic tone pulsed at 2 Hz, a low drone and a pseudo-noise made of many
    incommensurate sines, so every layer sees varied time-frequency content.
    """
    t = np.arange(int(6.2 * SAMPLE_RATE)) / SAMPLE_RATE
    chirp = 0.3 * np.sin(2 * np.pi * (100 * t + 250 * t ** 2))
    envelope = 0.5 * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) * np.exp(-8 * (t % 0.5))
    tone = envelope * sum(0.2 / k * np.sin(2 * np.pi * 440 * k * t) for k in range(1, 6))
    drone = 0.2 * np.sin(2 * np.pi * 55 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.3 * t))
    noise = 0.02 * sum(np.sin(2 * np.pi * (1000 + 97.31 * k) * t + k ** 2) for k in range(60))
    return (chirp + tone + drone + noise).astype(np.float32)


def log_mel_reference(y: np.ndarray) -> np.ndarray:
    """Upstream's representation, but in float32: (n_frames, 96) log10(10000 * mel power + 1)."""
    import librosa

    power = librosa.feature.melspectrogram(y=y, sr=SAMPLE_RATE, hop_length=256, n_fft=512, n_mels=96).T
    return np.log10(10000 * power.astype(np.float32) + 1).astype(np.float32)


def patches_of(spectrogram: np.ndarray) -> np.ndarray:
    n_patches = len(spectrogram) // PATCH_FRAMES
    return spectrogram[: n_patches * PATCH_FRAMES].reshape(n_patches, PATCH_FRAMES, -1)


def run_original(name: str, batches: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Run upstream's graph of ``name`` on each batch; returns batch -> layer -> array."""
    import musicnn
    import tensorflow as tf
    from musicnn import models

    architecture = "vgg" if "vgg" in name else "musicnn"
    graph = tf.Graph()
    with graph.as_default():
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, PATCH_FRAMES, 96])
            is_training = tf.compat.v1.placeholder(tf.bool)
            outputs = models.define_model(x, is_training, name, 50)
        fetches = {layer: outputs[position] for layer, position in OUTPUT_POSITIONS[architecture].items()}
        fetches["tags"] = tf.nn.sigmoid(outputs[0])
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            saver.restore(session, os.path.join(os.path.dirname(musicnn.__file__), name) + os.sep)
            return {key: session.run(fetches, feed_dict={x: batch, is_training: False})
                    for key, batch in batches.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("GENRELIB_DATA") or str(ROOT.parent / "shared" / "data" / "gtzan_mini")
    parser.add_argument("--data", default=default_data,
                        help="GTZAN root holding genres/<genre>/<track>.<ext> (default: $GENRELIB_DATA, "
                             "then ../shared/data/gtzan_mini)")
    parser.add_argument("--output", default=str(ROOT / "tests/data/musicnn_reference.npz"))
    args = parser.parse_args(argv)
    # Upstream's layers are tf.compat.v1.layers: they need legacy Keras (tf_keras) and graph mode.
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import librosa
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    batches = {"synthetic": patches_of(log_mel_reference(reference_signal()))[:N_SYNTHETIC_PATCHES]}
    for track in REAL_TRACKS:
        path = next((Path(args.data) / "genres" / track.split(".")[0]).glob(f"{track}.*"))
        y, _ = librosa.load(path, sr=SAMPLE_RATE, mono=True)
        batches[track] = patches_of(log_mel_reference(y))
    arrays: dict[str, np.ndarray] = {"input": batches["synthetic"]}
    for name in MODELS:
        architecture = "vgg" if "vgg" in name else "musicnn"
        results = run_original(name, batches)
        for layer, value in results["synthetic"].items():
            if layer != "logits":
                arrays[f"{name}__{layer}"] = value.astype(np.float32)
        for track in REAL_TRACKS:
            for layer in ("tags", DEFAULT_LAYER[architecture]):
                value = results[track][layer]
                arrays[f"{track}__{name}__{layer}"] = value.reshape(len(value), -1).astype(np.float32)
        print(f"{name}: {', '.join(f'{k} {v.shape}' for k, v in results['synthetic'].items())}")
    arrays["about"] = np.array(f"musicnn 0.1.0 original TF1 graphs; tensorflow {tf.__version__}, "
                               f"librosa {librosa.__version__}; made by tools/make_musicnn_reference.py")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, **arrays)
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 1024:.0f} KiB, {len(arrays)} arrays)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
