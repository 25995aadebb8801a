"""A 1x1 convolution (``Conv2D``) whose gradients are matrix products: YAMNet's pointwise layers, fast to fine-tune.

Notebook: 06_fine_tuning.

On 2 CPU cores (TensorFlow 2.21) one training step of YAMNet's ``layer14`` (3x3 depthwise + 1x1 pointwise conv
on a 3 x 2 x 1024 map) for a batch of 32 clips of 61 patches is about 7 times faster with the gradient as two
matrix products than with ``Conv2D``'s own (``benchmarks/bench_pointwise.py`` prints both: 13.7 s vs 2.0 s wall
in one run on shared cores); nearly all of the difference is TensorFlow's CPU kernel for the gradient of a 1x1
convolution with respect to its input. The forward pass is ``Conv2D``'s own, bit for bit, so embeddings and
every cached result stay what they were; only training (fine-tuning) changes: in speed, and in
the last bits of its gradients (float sums in another order).
"""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["Conv2D"]


@keras.saving.register_keras_serializable(package="genrelib")
class Conv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` with the same weights and outputs; for a 1x1 kernel, stride 1, no bias, its
    gradients are computed as ``dy @ W.T`` (input) and ``x.T @ dy`` (kernel) instead of TensorFlow's
    convolution-gradient kernels. Any other configuration is plain ``Conv2D``.

    The class keeps Keras' name on purpose: a ``.weights.h5`` file addresses each layer by its class name, so
    weights saved from a model of ``keras.layers.Conv2D`` (every YAMNet file converted before this class) load
    into one of these, and the other way round.
    """

    def _matrix_gradients(self) -> bool:
        return (tuple(self.kernel_size) == (1, 1) and tuple(self.strides) == (1, 1) and not self.use_bias
                and tuple(self.dilation_rate) == (1, 1) and self.groups == 1 and self.data_format == "channels_last")

    def call(self, inputs):
        if not self._matrix_gradients():
            return super().call(inputs)
        convolve = self.convolution_op

        @tf.custom_gradient
        def pointwise(x, kernel):
            def gradients(upstream):
                matrix = kernel[0, 0]  # (in_channels, filters)
                rows_in = tf.reshape(x, (-1, tf.shape(x)[-1]))  # every position of every patch: one row
                rows_out = tf.reshape(upstream, (-1, tf.shape(upstream)[-1]))
                return (tf.einsum("...f,cf->...c", upstream, matrix),
                        tf.matmul(rows_in, rows_out, transpose_a=True)[tf.newaxis, tf.newaxis])

            return convolve(x, kernel), gradients

        outputs = pointwise(inputs, tf.convert_to_tensor(self.kernel))
        return outputs if self.activation is None else self.activation(outputs)
