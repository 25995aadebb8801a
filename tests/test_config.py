"""genrelib.config: Table 1 defaults, overrides, JSON round trip, clear errors."""

import pytest

from genrelib.config import GENRES, Config, quick_mode
from genrelib.errors import ParameterError


def test_paper_table1_defaults():
    config = Config()
    assert (config.train.optimizer, config.train.learning_rate, config.train.rho) == ("rmsprop", 0.001, 0.9)
    assert (config.train.epochs, config.train.batch_size) == (30, 32)
    assert config.train.loss == "categorical_crossentropy"
    assert config.model.dropout_rate == 0.6
    assert len(GENRES) == 10 and GENRES[0] == "blues" and GENRES[-1] == "rock"


def test_dotted_overrides_keep_types():
    config = Config().replace(**{"train.epochs": "5", "seed": 3, "augment.pitch_steps_range": "-1,1",
                                 "augment_training": "false"})
    assert config.train.epochs == 5 and config.seed == 3
    assert config.augment.pitch_steps_range == (-1.0, 1.0) and config.augment_training is False
    assert Config().train.epochs == 30  # immutable: the default is untouched


@pytest.mark.parametrize("overrides, message", [
    ({"train.epoch": 5}, "unknown configuration key 'train.epoch'"),
    ({"nosection.x": 1}, "unknown configuration section 'nosection'"),
    ({"train.epochs": "many"}, "train.epochs='many' cannot be read as int"),
    ({"augment_training": "maybe"}, "cannot be read as bool"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(ParameterError, match=message):
        Config().replace(**overrides)


def test_json_round_trip(tmp_path):
    config = Config().replace(**{"train.learning_rate": 1e-4, "model.conv_filters": [32, 64]})
    config.to_json(tmp_path / "c.json")
    assert Config.from_json(tmp_path / "c.json") == config
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ParameterError, match="bad.json: cannot read configuration"):
        Config.from_json(tmp_path / "bad.json")


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_mode(monkeypatch, value, expected):
    monkeypatch.setenv("GENRELIB_QUICK", value)
    assert quick_mode() is expected
