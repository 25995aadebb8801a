"""genrelib.model: cropping/padding to n_patches, the CNN's structure and sizes, input standardisation, Fig 4."""

from contextlib import nullcontext

import keras
import numpy as np
import pytest

from genrelib import model as gmodel
from genrelib.config import ModelConfig
from genrelib.errors import ParameterError


def rows(n, d=3):
    """Row i holds the value i in every column, so which rows survive is visible."""
    return np.repeat(np.arange(n, dtype=np.float32)[:, None], d, axis=1)


# ------------------------------------------------------------------------------------------ fit_patches

@pytest.mark.parametrize("n, n_patches, expected_rows", [
    (31, 31, list(range(31))),           # a full 30 s clip is left as it is
    (10, 6, [2, 3, 4, 5, 6, 7]),          # crop: surplus 4 -> 2 rows dropped at each end
    (9, 6, [1, 2, 3, 4, 5, 6]),           # odd surplus 3 -> one row before, two after
    (4, 10, [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]),  # repeat: the clip continues from its start
    (1, 3, [0, 0, 0]),                    # a single patch is repeated
])
def test_fit_patches_crops_centre_and_repeats(n, n_patches, expected_rows):
    out = gmodel.fit_patches(rows(n), n_patches=n_patches)
    assert out.shape == (n_patches, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], expected_rows)


def test_fit_patches_zero_mode_appends_zero_rows():
    out = gmodel.fit_patches(rows(3) + 1, n_patches=5, pad_mode="zero")
    np.testing.assert_array_equal(out[:, 0], [1, 2, 3, 0, 0])


@pytest.mark.parametrize("embedding, n_patches, pad_mode, context", [
    (rows(4), 4, "repeat", nullcontext()),
    (rows(4), 0, "repeat", pytest.raises(ParameterError, match="n_patches")),
    (rows(4), 2.5, "repeat", pytest.raises(ParameterError, match="n_patches")),
    (rows(4), 4, "mirror", pytest.raises(ParameterError, match="pad_mode")),
    (np.zeros(5), 4, "repeat", pytest.raises(ParameterError, match="shape")),
    (np.zeros((0, 3)), 4, "repeat", pytest.raises(ParameterError, match="shape")),
])
def test_fit_patches_checks_arguments(embedding, n_patches, pad_mode, context):
    with context:
        gmodel.fit_patches(embedding, n_patches=n_patches, pad_mode=pad_mode)


def test_stack_patches_shapes_and_mixed_dimensions():
    stacked = gmodel.stack_patches([rows(2), rows(8), rows(5)], n_patches=5)
    assert stacked.shape == (3, 5, 3)
    np.testing.assert_array_equal(stacked[1, :, 0], [1, 2, 3, 4, 5])
    with pytest.raises(ParameterError, match="different dimensions"):
        gmodel.stack_patches([rows(2, d=3), rows(2, d=4)], n_patches=2)
    with pytest.raises(ParameterError, match="no embeddings"):
        gmodel.stack_patches([], n_patches=2)


# ------------------------------------------------------------------------------------------ the network

def test_default_structure_matches_config_and_hand_counted_weights():
    config = ModelConfig()
    n_patches, dim = 31, 128
    model = gmodel.build_classifier(n_patches=n_patches, embedding_dim=dim, config=config)
    kinds = [type(layer).__name__ for layer in model.layers]
    blocks = len(config.conv_filters)
    assert kinds == ["InputLayer", "Normalization"] + ["Conv1D", "MaxPooling1D"] * blocks + \
        ["Flatten", "Dense", "Dropout", "Dense"]
    assert model.get_layer("dropout").rate == 0.6  # the paper's Table 1
    assert model.output.shape[1:] == (10,)
    # weights counted by hand: conv (k * c_in + 1) * filters; "same" pooling halves the length, rounding up
    expected, channels, length = 2 * dim + 1, dim, n_patches  # normalization: mean, variance, count
    for filters in config.conv_filters:
        expected += (config.kernel_size * channels + 1) * filters
        channels, length = filters, -(-length // config.pool_size)
    expected += (length * channels + 1) * config.dense_units + (config.dense_units + 1) * 10
    assert model.count_params() == expected


def test_softmax_output_and_single_patch_input():
    model = gmodel.build_classifier(n_patches=1, embedding_dim=5, config=ModelConfig(conv_filters=(4, 4, 4)))
    probabilities = model.predict(np.random.default_rng(0).normal(size=(3, 1, 5)), verbose=0)
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_standardisation_uses_training_statistics_and_survives_saving(tmp_path):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(40, 7, 4)) * [1, 10, 100, 0.1] + [5, -3, 1000, 0]).astype(np.float32)
    # Variances 1 .. 1e4 and 0.01: the floor (off here) would otherwise lift the last one.
    model = gmodel.build_classifier(n_patches=7, embedding_dim=4, normalization_data=x,
                                    config=ModelConfig(variance_floor=0.0))
    standardized = keras.Model(model.input, model.get_layer("standardize").output).predict(x, verbose=0)
    flat = x.reshape(-1, 4)
    np.testing.assert_allclose(standardized.reshape(-1, 4), (flat - flat.mean(0)) / flat.std(0), atol=2e-3)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def standardize(model, x):
    return keras.Model(model.input, model.get_layer("standardize").output).predict(x, verbose=0)


def test_variance_floor_bounds_a_dimension_that_was_constant_in_training(tmp_path):
    rng = np.random.default_rng(2)
    train = rng.normal(size=(30, 5, 3)).astype(np.float32) * [1.0, 2.0, 0.0]   # dim 2: always zero
    train[0, 0, 2] = 1e-3                                                      # ... almost
    new_clip = np.ones((1, 5, 3), np.float32)
    flat = train.reshape(-1, 3).astype(np.float64)
    mean, variance = flat.mean(0), flat.var(0)
    floored = np.maximum(variance, 0.01 * variance.mean())
    model = gmodel.build_classifier(n_patches=5, embedding_dim=3, normalization_data=train)
    expected = (new_clip.reshape(-1, 3) - mean) / np.sqrt(floored)
    np.testing.assert_allclose(standardize(model, new_clip).reshape(-1, 3), expected, rtol=1e-3)
    assert abs(expected[0, 2]) < 1 / np.sqrt(0.01 * variance.mean())   # 10x a mean-variance dim, at most
    unfloored = gmodel.build_classifier(n_patches=5, embedding_dim=3, normalization_data=train,
                                        config=ModelConfig(variance_floor=0.0))
    assert abs(standardize(unfloored, new_clip)[0, 0, 2]) > 100 * abs(expected[0, 2])
    model.save(tmp_path / "m.keras")      # the floored variance is a weight: predict sees it too
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(standardize(reloaded, new_clip), standardize(model, new_clip), rtol=1e-6)


def test_floored_variance_by_hand():
    np.testing.assert_allclose(gmodel.floored_variance(np.array([1.0, 0.0, 3.0]), variance_floor=0.1),
                               [1.0, 0.4 / 3, 3.0], rtol=1e-6)   # floor: 0.1 x mean 4/3
    assert gmodel.floored_variance(np.array([1.0, 0.0]), variance_floor=0.0).tolist() == [1.0, 0.0]
    with pytest.raises(ParameterError, match="variance_floor"):
        gmodel.floored_variance(np.ones(2), variance_floor=2.0)


def test_variance_floor_leaves_statistics_bit_identical_when_no_dimension_is_floored():
    rng = np.random.default_rng(3)
    train = (rng.normal(size=(20, 4, 6)) * [1, 2, 3, 1, 2, 3]).astype(np.float32)
    plain = keras.layers.Normalization(axis=-1)
    plain.adapt(train)
    model = gmodel.build_classifier(n_patches=4, embedding_dim=6, normalization_data=train)
    for got, want in zip(model.get_layer("standardize").get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_without_standardisation_there_is_no_normalization_layer():
    model = gmodel.build_classifier(n_patches=4, embedding_dim=3, config=ModelConfig(standardize=False))
    assert "Normalization" not in {type(layer).__name__ for layer in model.layers}


@pytest.mark.parametrize("kwargs, context", [
    ({}, nullcontext()),
    ({"n_classes": 1}, pytest.raises(ParameterError, match="n_classes")),
    ({"n_patches": 0}, pytest.raises(ParameterError, match="n_patches")),
    ({"config": ModelConfig(dropout_rate=1.0)}, pytest.raises(ParameterError, match="dropout_rate")),
    ({"config": ModelConfig(dropout_rate=-0.1)}, pytest.raises(ParameterError, match="dropout_rate")),
    ({"config": ModelConfig(conv_filters=())}, pytest.raises(ParameterError, match="conv_filters")),
    ({"config": ModelConfig(kernel_size=0)}, pytest.raises(ParameterError, match="kernel_size")),
    ({"config": ModelConfig(variance_floor=-1e-3)}, pytest.raises(ParameterError, match="variance_floor")),
    ({"config": {"dense_units": 3}}, pytest.raises(ParameterError, match="ModelConfig")),
    ({"normalization_data": np.zeros((2, 4, 9))}, pytest.raises(ParameterError, match="normalization_data")),
])
def test_build_classifier_checks_arguments(kwargs, context):
    with context:
        gmodel.build_classifier(**{"n_patches": 4, "embedding_dim": 3, **kwargs})


# ------------------------------------------------------------------------------------------- Fig 4

def test_layer_table_and_fig4_are_read_from_the_model():
    from genrelib import plots

    model = gmodel.build_classifier(n_patches=10, embedding_dim=20, config=ModelConfig(conv_filters=(6, 9)))
    table = gmodel.layer_table(model)
    assert [row["name"] for row in table] == [layer.name for layer in model.layers]
    assert sum(row["params"] for row in table) == model.count_params()
    assert table[2]["detail"] == "6 x 3, relu" and table[2]["output_shape"] == (10, 6)
    ax = plots.fig4_cnn_architecture(model)
    texts = [t.get_text() for t in ax.texts if t.get_text()]  # arrows are empty annotations
    assert len(texts) == len(model.layers)
    assert any("Conv1D (9 x 3, relu)" in t for t in texts) and any("rate 0.6" in t for t in texts)
    assert f"{model.count_params():,} weights" in ax.get_title()
    import matplotlib.pyplot as plt

    plt.close("all")
