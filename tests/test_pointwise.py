"""genrelib.pointwise.Conv2D: Conv2D's outputs bit for bit and its gradients (as matrix products), in YAMNet."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from genrelib import pointwise  # noqa: E402


def _pair(filters=16, **options):
    x = keras.Input((3, 2, 8))
    reference, ours = keras.layers.Conv2D(filters, use_bias=False, **options), pointwise.Conv2D(filters, use_bias=False,
                                                                                                **options)
    reference(x), ours(x)
    ours.set_weights(reference.get_weights())
    return reference, ours


def _gradients(layer, x):
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.cos(y))  # not a plain sum: upstream gradients differ per element
    return [g.numpy() for g in tape.gradient(loss, [x, layer.kernel])]


def test_outputs_are_conv2d_bit_for_bit_and_gradients_agree():
    reference, ours = _pair(kernel_size=1)
    x = np.random.default_rng(0).normal(size=(5, 3, 2, 8)).astype(np.float32)
    assert np.array_equal(ours(x).numpy(), reference(x).numpy())
    for got, expected in zip(_gradients(ours, x), _gradients(reference, x)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_other_configurations_are_plain_conv2d():
    reference, ours = _pair(kernel_size=3, padding="same")
    x = np.random.default_rng(1).normal(size=(2, 3, 2, 8)).astype(np.float32)
    assert not ours._matrix_gradients()
    for got, expected in zip(_gradients(ours, x), _gradients(reference, x)):
        np.testing.assert_array_equal(got, expected)


def test_yamnet_uses_it_for_its_pointwise_layers_only():
    from genrelib import yamnet

    model = yamnet.YAMNet()
    kinds = {layer.name: type(layer) for layer in model.layers}
    assert kinds["layer14.pointwise_conv"] is pointwise.Conv2D and kinds["layer2.pointwise_conv"] is pointwise.Conv2D
    assert kinds["layer1.conv"] is keras.layers.Conv2D
    assert sum(kind is pointwise.Conv2D for kind in kinds.values()) == 13


def test_weights_saved_from_keras_conv2d_load_into_it_and_back(tmp_path):
    def model(conv):
        x = keras.Input((3, 2, 8))
        y = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(x)  # as YAMNet's layer1, before its 1x1 convs
        return keras.Model(x, conv(16, 1, use_bias=False)(conv(8, 1, use_bias=False)(y)))

    plain, ours = model(keras.layers.Conv2D), model(pointwise.Conv2D)
    plain.save_weights(tmp_path / "plain.weights.h5")
    ours.load_weights(tmp_path / "plain.weights.h5")
    x = np.random.default_rng(2).normal(size=(2, 3, 2, 8)).astype(np.float32)
    assert np.array_equal(ours(x).numpy(), plain(x).numpy())
    ours.save_weights(tmp_path / "ours.weights.h5")
    again = model(keras.layers.Conv2D)
    again.load_weights(tmp_path / "ours.weights.h5")
    assert np.array_equal(again(x).numpy(), plain(x).numpy())
