"""How much genrelib's resampler (soxr) changes VGGish's input and output against the official one (resampy).

Usage::

    pip install resampy          # not a genrelib dependency; only this measurement needs it
    python tools/vggish_resampling.py [--data GTZAN_ROOT] [--embed-per-genre 2] [--output-dir results]

Writes ``vggish_resampling.{md,json}`` under ``--output-dir``. For every clip of the data (the mini set's
22 050 Hz clips), two 16 kHz versions:

- genrelib's: ``genrelib.audio.load(path, sr=16000)``, what ``embed_dataset`` feeds the backend (soxr "HQ");
- the official pipeline's: the decoded samples in float64, ``resampy.resample(y, sr, 16000)`` (its default
  ``kaiser_best`` filter, as ``vggish_input.waveform_to_examples`` calls it).

Both go through the same float64 front end (``vggish.log_mel_patches``); the table gives the log-mel
difference over all patches and bands. The real network weights are not available offline, so the embedding
difference is measured through VGGish with random-but-fixed weights (``VGGish(seed=0)``, Glorot-uniform):
it shows how a difference of that size propagates through the architecture, not what it does to the real
embedding.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def two_resamplings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(genrelib's, official) log-mel patches of one clip, cut to the same number of patches."""
    import resampy

    from genrelib import audio, vggish

    native = audio.load(path, sr=None).astype(np.float64)
    native_sr = audio.info(path)["samplerate"]
    ours = vggish.log_mel_patches(audio.load(path, sr=vggish.SAMPLE_RATE), sr=vggish.SAMPLE_RATE)
    official = vggish.log_mel_patches(resampy.resample(native, native_sr, vggish.SAMPLE_RATE),
                                      sr=vggish.SAMPLE_RATE)
    n_patches = min(len(ours), len(official))
    return ours[:n_patches].astype(np.float64), official[:n_patches].astype(np.float64)


def measure(index, *, embed_per_genre: int) -> dict:
    """Log-mel differences of every clip; embedding differences of ``embed_per_genre`` clips per genre."""
    from genrelib import vggish

    model = vggish.VGGish(seed=0, trainable=False)
    log_mel_diffs, spreads, relative, cosine = [], [], [], []
    embedded = set(index.groupby("genre").head(embed_per_genre).index)
    for row in index.itertuples():
        ours, official = two_resamplings(Path(row.path))
        log_mel_diffs.append(np.abs(ours - official).reshape(-1, vggish.N_MELS))
        spreads.append(official.std())
        if row.Index in embedded:
            e_ours = model.predict(ours[..., None].astype(np.float32), verbose=0).astype(np.float64)
            e_official = model.predict(official[..., None].astype(np.float32), verbose=0).astype(np.float64)
            relative.append(np.linalg.norm(e_ours - e_official, axis=1) / np.linalg.norm(e_official, axis=1))
            cosine.append(np.sum(e_ours * e_official, axis=1)
                          / (np.linalg.norm(e_ours, axis=1) * np.linalg.norm(e_official, axis=1)))
    frames = np.concatenate(log_mel_diffs)
    relative, cosine = np.concatenate(relative), np.concatenate(cosine)
    by_band = frames.mean(axis=0)
    return {
        "log_mel": {"n_clips": len(index), "n_values": int(frames.size), "mean_abs": float(frames.mean()),
                    "median_abs": float(np.median(frames)), "p99_abs": float(np.quantile(frames, 0.99)),
                    "max_abs": float(frames.max()), "clip_std_median": float(np.median(spreads)),
                    "worst_band": int(by_band.argmax()), "worst_band_mean_abs": float(by_band.max()),
                    "other_bands_mean_abs_max": float(np.delete(by_band, by_band.argmax()).max())},
        "embedding": {"n_clips": len(embedded), "n_patches": int(relative.size), "weights": "VGGish(seed=0)",
                      "relative_l2_median": float(np.median(relative)), "relative_l2_max": float(relative.max()),
                      "cosine_min": float(cosine.min())},
    }


def markdown(report: dict) -> str:
    log_mel, embedding = report["log_mel"], report["embedding"]
    return "\n".join([
        "# VGGish input resampled with soxr (genrelib) against resampy (official pipeline)",
        "",
        f"Data: {log_mel['n_clips']} GTZAN clips at 22 050 Hz (`{report['data']}`). Command: `{report['command']}` "
        f"(resampy {report['versions']['resampy']}, soxr {report['versions']['soxr']}).",
        "",
        "| quantity | value |",
        "| --- | ---: |",
        f"| log-mel difference, mean over {log_mel['n_values']:,} values | {log_mel['mean_abs']:.4f} |",
        f"| log-mel difference, median | {log_mel['median_abs']:.1e} |",
        f"| log-mel difference, 99th percentile | {log_mel['p99_abs']:.4f} |",
        f"| log-mel difference, max | {log_mel['max_abs']:.3f} |",
        f"| log-mel spread within a clip (std, median over clips), for scale | {log_mel['clip_std_median']:.2f} |",
        f"| band with the largest mean difference (0-63; 63 ends at 7.5 kHz) and that mean | "
        f"{log_mel['worst_band']}: {log_mel['worst_band_mean_abs']:.4f} |",
        f"| largest mean difference of any other band | {log_mel['other_bands_mean_abs_max']:.4f} |",
        f"| embedding relative L2 difference, median over {embedding['n_patches']} patches "
        f"({embedding['n_clips']} clips, {embedding['weights']}) | {embedding['relative_l2_median']:.2e} |",
        f"| embedding relative L2 difference, max | {embedding['relative_l2_max']:.2e} |",
        f"| embedding cosine similarity, min | {embedding['cosine_min']:.6f} |",
        "",
        "Log-mel values are natural logarithms of mel energies (+ 0.01), so a difference d is a factor e^d in "
        "energy. The network has random weights (the real ones are not available offline): the embedding rows "
        "show how the input difference propagates through VGGish's architecture, not its effect on the real "
        "embedding.",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="GTZAN root (default: $GENRELIB_DATA, then ./data/gtzan)")
    parser.add_argument("--embed-per-genre", type=int, default=2, help="clips per genre run through the network")
    parser.add_argument("--output-dir", default=str(ROOT / "results"))
    args = parser.parse_args(argv)
    try:
        import resampy
    except ImportError:
        raise SystemExit("tools/vggish_resampling.py needs resampy (pip install resampy; not a genrelib "
                         "dependency)") from None
    import soxr

    from genrelib import data
    from genrelib.storage import atomic_write_bytes, neutral_paths

    root, source = data.resolve_root(args.data)
    command = " ".join(filter(None, [f"GENRELIB_DATA={shlex.quote(str(root))}" if source == "GENRELIB_DATA" else "",
                                     "python tools/vggish_resampling.py",
                                     shlex.join(argv if argv is not None else sys.argv[1:])]))
    report = {"command": command, "data": str(root),
              "versions": {"python": platform.python_version(), "resampy": resampy.__version__,
                           "soxr": soxr.__version__},
              **measure(data.load_gtzan(root), embed_per_genre=args.embed_per_genre)}
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(output / "vggish_resampling.json", neutral_paths(json.dumps(report, indent=1) + "\n").encode())
    atomic_write_bytes(output / "vggish_resampling.md", neutral_paths(markdown(report)).encode())
    print(neutral_paths(markdown(report)))
    print(f"wrote {output / 'vggish_resampling.md'} and {output / 'vggish_resampling.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
