"""genrelib.quiet: TensorFlow's native start-up chatter is dropped, everything else on file descriptor 2 is kept."""

import os
import subprocess
import sys

import pytest

from genrelib.quiet import NOISE, filtered_native_stderr

SEEN = [  # lines TensorFlow 2.21 wrote on this machine, verbatim
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796164828.765004   19919 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1796164839.142859   19919 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796163067.597171    4715 node_def_util.cc:682] NodeDef mentions attribute use_unbounded_threadpool "
    "which is not in the op definition: Op<name=MapDataset; ...>",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the appropriate "
    "compiler flags.",
]


def test_only_the_known_chatter_matches():
    assert all(NOISE.match(line) for line in SEEN)
    for real in ("E0000 00:00:1796163067.597171    4715 conv_ops.cc:12] a real kernel error",
                 "Traceback (most recent call last):", "genrelib train: error: something", "Note: anything"):
        assert not NOISE.match(real)


def test_native_writes_are_filtered_and_the_rest_kept_in_order(capfd):
    with filtered_native_stderr():
        os.write(2, (SEEN[0] + "\n").encode())
        os.write(2, b"a real native message\n")
        os.write(2, (SEEN[3] + "\n").encode())
        os.write(2, b"second real line\n")
    assert capfd.readouterr().err == "a real native message\nsecond real line\n"


def test_importing_tensorflow_after_genrelib_prints_nothing():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GENRELIB_TF_LOG")}
    code = "import genrelib, tensorflow as tf; print(float(tf.reduce_sum(tf.ones(3))))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "3.0"
    assert done.stderr == "", done.stderr


def test_python_logging_set_up_during_the_filtered_import_still_reaches_stderr():
    """TensorFlow's Python logger takes sys.stderr while its import is filtered: its warnings must not be lost."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GENRELIB_TF_LOG")}
    code = "import genrelib, tensorflow as tf; tf.get_logger().warning('a real warning')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stderr == "WARNING:tensorflow:a real warning\n", done.stderr


RETRACING_STORM = """
import numpy as np, genrelib, keras, tensorflow as tf
for _ in range(8):  # a new model per run, as every protocol makes: Keras retraces its predict step each time
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.predict(np.ones((4, 3)), verbose=0)
tf.get_logger().warning('a real warning')
"""


def test_retracing_warnings_of_one_model_per_run_are_dropped_and_other_warnings_kept():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GENRELIB_TF_LOG")}
    raw = subprocess.run([sys.executable, "-c", RETRACING_STORM], capture_output=True, text=True, timeout=300,
                         env={**env, "GENRELIB_TF_LOG": "1"})
    assert raw.returncode == 0 and "triggered tf.function retracing" in raw.stderr  # what users saw before
    quiet = subprocess.run([sys.executable, "-c", RETRACING_STORM], capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 0 and quiet.stderr == "WARNING:tensorflow:a real warning\n", quiet.stderr


KERNEL_CELL = """
import dataclasses, numpy as np, genrelib, genrelib.train, genrelib.config as C
config = C.Config()
config = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=2))
x = np.random.default_rng(0).random((40, 10, 16), dtype=np.float32); y = np.arange(40) % 10
model, _ = genrelib.train.fit_classifier(x, y, x_valid=x[:10], y_valid=y[:10], config=config, progress=False)
print(model.predict(x, verbose=0).shape)
"""


def kernel_streams(code: str, env: dict[str, str]) -> str:
    """What a notebook cell run in a Jupyter kernel (the ipykernel JupyterLab starts, which forwards file
    descriptor 2 to the notebook) shows: its stdout and stderr streams and any error, as text."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", env=env, stderr=subprocess.DEVNULL)
    try:
        msg_id, shown = client.execute(code), []
        while True:
            message = client.get_iopub_msg(timeout=240)
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                shown.append(content["text"])
            elif kind == "error":
                shown.append("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(shown)
    finally:
        manager.shutdown_kernel(now=True)


@pytest.mark.slow
def test_a_notebook_run_by_hand_in_a_jupyter_kernel_shows_no_tensorflow_log():
    """A student's kernel has no TF_CPP_MIN_LOG_LEVEL; the same cell with GENRELIB_TF_LOG=1 (the raw log) shows the
    start-up lines, so the kernel does pass native writes on to the notebook and their absence means something."""
    # ipykernel forwards descriptor 2 to the notebook except under pytest (PYTEST_CURRENT_TEST), as in JupyterLab
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GENRELIB_TF_LOG",
                                                            "PYTEST_CURRENT_TEST")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.dirname(os.path.dirname(__file__)),
                                                      env.get("PYTHONPATH")]))
    assert kernel_streams(KERNEL_CELL, env) == "(40, 10)\n"
    raw = kernel_streams(KERNEL_CELL, {**env, "GENRELIB_TF_LOG": "1"})
    assert any(NOISE.match(line) for line in raw.splitlines()), raw
