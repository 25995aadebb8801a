"""Benchmark: one stage-2 epoch of fine-tuning, end to end on log-mel patches vs on the cached frozen bottom.

For musicnn-msd and each ``--unfreeze`` value, both training models of :mod:`genrelib.finetune` are built with
the same trainable layers and timed on random inputs of the real shapes (clips of 10 patches of 187 x 96):

(a) end to end - ``build_end_to_end``: every step runs the whole backbone on the patches (what a plain
    Keras fine-tuning script does);
(b) cut - the top of ``split_backbone`` and the head on the cached outputs of the frozen bottom (what
    ``fine_tune`` trains), plus the one-off cost of computing those outputs once per clip.

One training step (``train_on_batch``, batch of ``--batch-size`` clips) is timed after a warm-up step; the
projection is for one epoch of ``--clips`` training clips (280 in a 5-fold split of the mini set with three
augmented copies per track). Wall and CPU seconds are both printed; on a shared machine CPU seconds are the
steadier figure. Target: (b) at least 10 x faster per epoch than (a) for ``unfreeze=1`` on 2 CPU cores.

Usage: ``python benchmarks/bench_finetune.py [--unfreeze 1 2] [--batch-size 8] [--clips 280]``
(also run by ``make bench``).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def timed(function, repeats: int = 2) -> tuple[float, float]:
    """(wall, CPU) seconds of the best of ``repeats`` calls, after one warm-up call."""
    function()
    best = (np.inf, np.inf)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def measure(unfreeze: int, *, batch_size: int, clips: int, n_patches: int = 10) -> dict:
    import keras

    from genrelib import finetune
    from genrelib.config import GENRES, ModelConfig
    from genrelib.model import build_classifier

    backbone = finetune.load_backbone("musicnn-msd")
    finetune.unfreeze_top(backbone, unfreeze=unfreeze)
    bottom, top = finetune.split_backbone(backbone.model)
    head = build_classifier(n_patches=n_patches, embedding_dim=backbone.embedding_dim, config=ModelConfig())
    rng = np.random.default_rng(0)
    patches = rng.normal(1.0, 0.5, (batch_size, n_patches, *backbone.patch_shape)).astype(np.float32)
    labels = keras.utils.to_categorical(np.arange(batch_size) % len(GENRES), len(GENRES))

    def step(model, x):
        model.compile(optimizer=keras.optimizers.RMSprop(1e-5), loss="categorical_crossentropy", jit_compile=False)
        return lambda: model.train_on_batch(x, labels)

    end_to_end = timed(step(finetune.build_end_to_end(backbone, head), patches))
    flat = patches.reshape(-1, *backbone.patch_shape)
    features = bottom.predict_on_batch(flat)
    features = features if isinstance(features, list) else [features]
    cached = [f.reshape(batch_size, n_patches, *f.shape[1:]) for f in features]
    cut_model = finetune.clip_model(top, head, n_patches=n_patches, name="cut")
    cut = timed(step(cut_model, cached if len(cached) > 1 else cached[0]))
    once = timed(lambda: bottom.predict_on_batch(flat[:n_patches]))  # one clip through the frozen bottom
    steps = -(-clips // batch_size)
    return {"unfreeze": unfreeze, "trained": [layer.name for layer in backbone.model.layers if layer.trainable_weights],
            "end_to_end": [steps * s for s in end_to_end], "cut": [steps * s for s in cut],
            "bottom_once": [clips * s for s in once]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unfreeze", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--clips", type=int, default=280)
    args = parser.parse_args(argv)
    print(f"musicnn-msd, one epoch of {args.clips} training clips (10 patches each), batch {args.batch_size}, "
          f"{os.cpu_count()} CPU cores; seconds as wall / CPU")
    ok = True
    for unfreeze in args.unfreeze:
        result = measure(unfreeze, batch_size=args.batch_size, clips=args.clips)
        speedup = result["end_to_end"][1] / result["cut"][1]
        print(f"unfreeze={unfreeze} ({', '.join(result['trained'])}): end to end "
              f"{result['end_to_end'][0]:.1f} / {result['end_to_end'][1]:.1f} s per epoch; cut "
              f"{result['cut'][0]:.2f} / {result['cut'][1]:.2f} s per epoch ({speedup:.0f} x less CPU), after "
              f"{result['bottom_once'][0]:.1f} / {result['bottom_once'][1]:.1f} s once for the frozen bottom")
        ok &= unfreeze != 1 or speedup >= 10
    print("target (cut >= 10 x less CPU per epoch at unfreeze=1):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
