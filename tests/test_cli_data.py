"""``genrelib data ...`` through parse_args/main, as a user types it."""

import json

import pytest

from genrelib import cli


def test_help_lists_the_data_verb(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0 and "data" in capsys.readouterr().out


def test_parse_args_data_split():
    args = cli.parse_args(["data", "split", "--protocol", "kfold", "--k", "5", "--output", "s.json"])
    assert (args.verb, args.action, args.protocol, args.k, args.seed) == ("data", "split", "kfold", 5, 0)


def test_bad_flag_values_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.parse_args(["data", "split", "--k", "0", "--output", "x"])
    assert "must be a positive integer" in capsys.readouterr().err
    assert cli.parse_args(["augment", "--seed", "0"]).seed == 0
    for argv, message in ((["augment", "--seed", "-1"], "must be a non-negative integer"),
                          (["finetune", "--unfreeze", "-1"], "must be a non-negative integer"),
                          (["finetune", "--unfreeze", "top"], "is not an integer")):
        with pytest.raises(SystemExit):
            cli.parse_args(argv)
        assert message in capsys.readouterr().err, argv


def test_info_and_validate(tiny_gtzan, capsys):
    assert cli.main(["data", "info", "--data", str(tiny_gtzan)]) == 0
    assert "30 tracks, 10 genres" in capsys.readouterr().out
    # 2 s synthetic clips are not GTZAN-length: validate reports them and exits non-zero
    assert cli.main(["data", "validate", "--data", str(tiny_gtzan), "--expected", "found"]) == 1
    assert "30 tracks checked: 0 ok, 30 with problems" in capsys.readouterr().out


def test_split_writes_json_with_seed(tiny_gtzan, tmp_path, capsys):
    out = tmp_path / "split.json"
    assert cli.main(["data", "split", "--data", str(tiny_gtzan), "--seed", "4", "--test-size", "0.333",
                     "--valid-size", "0", "--output", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["seed"] == 4 and saved["protocol"] == "paper" and len(saved["test"]) == 10


def test_errors_are_one_line_and_nonzero(tmp_path, capsys):
    assert cli.main(["data", "info", "--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genrelib data info: error:") and "nowhere" in err and "Traceback" not in err


def test_program_ends_at_once_after_a_tensorflow_verb_unless_something_needs_a_shutdown(monkeypatch, capsys):
    import logging
    import multiprocessing
    import os
    import sys

    import tensorflow  # noqa: F401 - the condition: TensorFlow loaded by the verb

    exits = []
    monkeypatch.setattr(os, "_exit", exits.append)
    monkeypatch.setattr(logging, "shutdown", lambda: None)  # the real one would close pytest's own handlers
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(multiprocessing, "active_children", lambda: [])
    monkeypatch.setattr(sys, "argv", ["genrelib", "data", "info", "--data", "/nonexistent/genrelib-data"])
    code = cli.main()
    assert exits == [code] and code != 0  # the program's exit status, after the verb's one error line
    assert "genrelib data info: error:" in capsys.readouterr().err
    assert cli.main(["data", "info", "--data", "/nonexistent/genrelib-data"]) == code and exits == [code]  # argv given: returns
    monkeypatch.setitem(sys.modules, "ray", object())
    monkeypatch.setattr(sys, "argv", ["genrelib", "data", "info", "--data", "/nonexistent/genrelib-data"])
    assert cli.main() == code and exits == [code]  # Ray's shutdown runs at exit: the normal way out
