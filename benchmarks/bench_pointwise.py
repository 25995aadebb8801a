"""Benchmark: one fine-tuning step of YAMNet's top block with ``keras.layers.Conv2D`` vs ``genrelib.pointwise.Conv2D``.

The block is YAMNet's ``layer14`` as ``genrelib.yamnet`` builds it (3x3 depthwise conv -> batch norm -> ReLU6 ->
1x1 pointwise conv, 1024 filters -> batch norm -> ReLU6 -> global average pooling) on the 3 x 2 x 1024 map of
layer13, i.e. what ``genrelib finetune --backbone yamnet --unfreeze 1`` trains in every step, for a batch of
``--clips`` clips of ``--patches`` patches (32 x 61: batch 32 of 30 s clips, a patch every 0.48 s). One forward
and backward pass (the gradients of both kernels) is timed after a warm-up, best of ``--repeats``; wall and CPU
seconds are printed. Both layers compute the same outputs (bit for bit) and gradients (tests/test_pointwise.py).

Usage: ``python benchmarks/bench_pointwise.py [--clips 32] [--patches 61] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def block(conv_class):
    import keras
    from keras import layers

    x = keras.Input((3, 2, 1024))
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    y = layers.ReLU(max_value=6)(layers.BatchNormalization(scale=False, trainable=False)(y))
    y = conv_class(1024, 1, padding="same", use_bias=False)(y)
    y = layers.ReLU(max_value=6)(layers.BatchNormalization(scale=False, trainable=False)(y))
    return keras.Model(x, layers.GlobalAveragePooling2D()(y))


def step_seconds(model, inputs: np.ndarray, *, repeats: int) -> tuple[float, float]:
    import tensorflow as tf

    variables = model.trainable_variables

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            y = model(x, training=True)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, variables)

    step(inputs)
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        step(inputs)
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--patches", type=int, default=61)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import keras

    from genrelib import pointwise

    inputs = np.random.default_rng(0).uniform(0, 6, (args.clips * args.patches, 3, 2, 1024)).astype(np.float32)
    for name, conv_class in (("keras.layers.Conv2D", keras.layers.Conv2D), ("genrelib.pointwise.Conv2D",
                                                                            pointwise.Conv2D)):
        wall, cpu = step_seconds(block(conv_class), inputs, repeats=args.repeats)
        print(f"{name:26s} one step ({args.clips} clips x {args.patches} patches): {wall:.2f} s wall, {cpu:.2f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
