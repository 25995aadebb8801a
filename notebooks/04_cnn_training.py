# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · The paper's CNN: model and training
#
# The paper classifies a clip from its sequence of embeddings: a 30 s clip becomes one vector per patch (31 × 128
# with VGGish, 10 × 200 with musicnn), and a small convolutional network reads that sequence. This notebook builds
# the network (the paper's Fig 4), trains it with the paper's Table 1 settings on a track split made *before*
# augmentation, draws the training curves (Fig 5), and measures — rather than assumes — what augmentation adds.
#
# The logic lives in `genrelib.model` (the network, cropping and padding), `genrelib.train` (Table 1, seeds,
# protocols, run directories) and `genrelib.pipeline` (joining data, augmentation and embeddings); the notebook
# calls them. Notebook 05 evaluates the runs trained here.

# %%
import inspect
import warnings

import numpy as np
import pandas as pd

from IPython.display import Code, Markdown, display

import genrelib
from genrelib import data, evaluate, findings, model, pipeline, plots, train
from genrelib.config import Config

QUICK = genrelib.config.quick_mode()  # CI: 4 tracks per genre, 3 epochs, one seed, one augmentation method
SEED = 0
BACKEND = "auto"                      # VGGish when its converted weights are cached, else musicnn-msd (offline)
PER_GENRE = 4 if QUICK else None      # None: every track
EPOCHS = 3 if QUICK else 30           # Table 1: 30
N_SEEDS = 1 if QUICK else 3           # repetitions with seeds SEED, SEED + 1, ...
QUICK_SETTINGS = {"train.valid_size": 0.25, "augment.methods": ["white_noise"]} if QUICK else {}
CONFIG = Config(seed=SEED, protocol="paper").replace(**{
    "embed.backend": BACKEND, "train.epochs": EPOCHS, "train.n_seeds": N_SEEDS, **QUICK_SETTINGS})
warnings.simplefilter("always", genrelib.GenrelibWarning)
print(CONFIG.train)

# %% [markdown]
# ## Data and embeddings
#
# The same data search as notebook 01 (the mini set by default, or your own collection: `load_tracks` reads either,
# and the network gets one output per label). `load_tracks` indexes it and embeds every track
# with the backend (cached on disk from notebook 03, keyed by the audio's checksum and the weights); `DATA`
# describes the data for every run record, checksum included.

# %%
ROOT, SOURCE = data.resolve_root(allow_download=True, allow_synthetic=True)
tracks, DATA, backend = pipeline.load_tracks(ROOT, backend=BACKEND, per_genre=PER_GENRE)
print(f"data: {ROOT} (via {SOURCE}), {len(tracks)} tracks; backend {backend.name}: "
      f"{backend.embedding_dim}-d vectors, one per {backend.patch_hop_seconds:.2f} s")
print("patches per clip:", tracks["n_patches"].value_counts().sort_index().to_dict())

# %% [markdown]
# ## Fig 4 · the network
#
# The paper names the ingredients — convolution, ReLU, max-pooling, a fully connected layer, dropout 0.6, softmax —
# but no sizes. Ours (`genrelib.config.ModelConfig`, where the reasons are written down): the convolutions run
# along the patch axis with the embedding dimensions as channels, because neighbouring patches are neighbouring
# moments of the music while neighbouring embedding dimensions are unrelated features. A `Normalization` layer
# first standardises each dimension with the training clips' statistics, so the saved network carries them.
#
# This is the whole definition, as the package has it (`genrelib.model.build_classifier`): plain Keras layers,
# nothing hidden.

# %%
display(Code(inspect.getsource(model.build_classifier), language="python"))

# %% [markdown]
# The cell below shows the layers for VGGish-shaped input (31 × 128), a fixed fact; the figure is drawn from the
# network for this run's backend.

# %%
# NBVAL_CHECK_OUTPUT
print(pd.DataFrame(model.layer_table(model.build_classifier(n_patches=31, embedding_dim=128))).to_string(index=False))

# %%
N_PATCHES = int(tracks["n_patches"].median())
network = model.build_classifier(n_patches=N_PATCHES, embedding_dim=backend.embedding_dim, config=CONFIG.model)
ax = plots.fig4_cnn_architecture(network)
plots.save_figure(ax.figure, "fig4_cnn_architecture");

# %% [markdown]
# ## Every clip gets the same length
#
# The network needs a fixed number of patches. Most GTZAN clips give exactly the median count; a longer clip keeps
# its central patches, a shorter one (a clip under 30 s) continues from its start, so every row stays a real
# embedding. Here a clip of 4 patches (rows numbered 0-3) fills 6, and one of 9 is cropped to 6:

# %%
print("4 patches ->", model.fit_patches(np.arange(4.0)[:, None], n_patches=6)[:, 0])
print("9 patches ->", model.fit_patches(np.arange(9.0)[:, None], n_patches=6)[:, 0])

# %% [markdown]
# ## The split, before any augmentation
#
# Protocol `paper`: a stratified random 75/25 split by track, with validation tracks carved from training (the
# paper's per-genre recalls fit about 25 test tracks per genre). Augmented copies are made only of training
# tracks, and the leakage guard checks every training clip's source track before each fit.

# %%
split = train.make_splits(tracks, protocol="paper", seed=SEED, config=CONFIG)[0]
split.summary().T

# %% [markdown]
# ## Training (Table 1)
#
# RMSprop (learning rate 0.001, ρ 0.9), categorical cross-entropy, batch 32, 30 epochs, dropout 0.6; seeds make
# every run reproducible (`keras.utils.set_random_seed` and TensorFlow's op determinism). The checkpoint with the
# lowest *validation* loss predicts the test tracks; the test tracks choose nothing. Each run is a folder under
# `runs/` with its configuration, split, seeds, backend, data checksum, package versions and git commit; a finished
# run is reused, so re-running this cell costs nothing.
#
# The training itself is one `model.fit` call; these are the lines of `genrelib.train.fit_classifier` that build,
# compile and fit the network (the rest of the function checks its inputs and saves checkpoints):

# %%
source = inspect.getsource(train.fit_classifier)
start, end = source.index("    set_determinism(seed)"), source.index("callbacks=[recorder])") + len("callbacks=[recorder])")
display(Code(source[start:end], language="python"))

# %%
augmenter = pipeline.make_augmenter(tracks, config=CONFIG, backend=backend)
runs = train.run_protocol(tracks, config=CONFIG, backend=backend, augmented_for=augmenter, data=DATA)
with_augmentation = evaluate.summarize_runs(runs)
with_augmentation["per_run"]

# %% [markdown]
# ## Fig 5 · learning curves
#
# Accuracy and loss per epoch on the training clips (with dropout active, and including the augmented copies) and
# on the validation tracks. With few training tracks the validation curve is jagged and flattens early; the gap
# between the curves shows how much the network memorises.

# %%
histories = [train.load_run(run)["history"] for run in runs]
facts = with_augmentation["facts"]
fig = plots.fig5_training_curves(histories, title=f"{facts['data']}, {facts['protocol']}, {facts['backend']}")
plots.save_figure(fig, "fig5_training_curves");

# %% [markdown]
# ## Does augmentation help? Measured, on the same splits
#
# The same protocol, seeds and splits without the augmented copies. Both rows are test accuracy (mean ± std over
# the seeds); notebook 05 adds the per-genre view and the baseline.

# %%
runs_plain = train.run_protocol(tracks, config=CONFIG.replace(augment_training=False), backend=backend, data=DATA)
without_augmentation = evaluate.summarize_runs(runs_plain)
evaluate.table3([with_augmentation, without_augmentation])[
    ["protocol", "backend", "augmentation", "seeds", "accuracy_mean", "accuracy_std", "loss_mean", "loss_std"]]

# %%
pipeline.write_figures_readme({
    "fig4_cnn_architecture": f"the network built for {backend.name} input ({N_PATCHES} patches x "
                             f"{backend.embedding_dim}), sizes from ModelConfig",
    "fig5_training_curves": f"{facts['data']}, {facts['protocol']}, {facts['backend']}, augmentation "
                            f"{facts['augmentation']}: "
                            f"{facts['runs']} run(s), seeds {facts['seeds']}, mean ± std per epoch",
});

# %% [markdown]
# ## What this shows
#
# * The network is small on purpose: 89 k weights for musicnn's 10 × 200 input, a few hundred training clips.
#   Its sizes were chosen on validation tracks only (`ModelConfig`'s docstring, `results/README.md`).
# * Training is reproducible: the same seed gives the same weights and the same curves; results are reported as
#   mean ± std over seeds, never as one lucky run.
# * Whether augmentation helps is a measurement on the same splits (the table above, and the next cell), not an
#   assumption; notebook 05 and `results/README.md` compare every protocol and the baseline.

# %%
display(Markdown(findings.describe_augmentation(with_augmentation, without_augmentation)))

# %% [markdown]
# ## Exercises
#
# 1. How many weights does the network have for VGGish input (31 × 128) and for musicnn input (10 × 200)? Where
#    are most of them?
# 2. Train one run without the `Normalization` layer (`model.standardize=False`) on the same split and seed, and
#    compare its test accuracy and validation curve with the run above.
# 3. The paper's dropout is 0.6. Train one run with 0.2: does the gap between training and validation loss grow?

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
for shape in ((31, 128), (10, 200)):
    net = model.build_classifier(n_patches=shape[0], embedding_dim=shape[1])
    biggest = max(net.layers, key=lambda layer: layer.count_params())
    print(f"{shape}: {net.count_params():,} weights, most in {biggest.name} ({biggest.count_params():,})")

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
ONE_RUN = {"train.n_seeds": 1}
variants = {"standardize off": CONFIG.replace(**ONE_RUN, **{"model.standardize": False}),
            "dropout 0.2": CONFIG.replace(**ONE_RUN, **{"model.dropout_rate": 0.2})}
for name, variant in variants.items():
    variant_runs = train.run_protocol(tracks, config=variant.replace(augment_training=False), backend=backend, data=DATA)
    history = train.load_run(variant_runs[0])["history"]
    summary = evaluate.summarize_runs(variant_runs)
    print(f"{name}: test accuracy {summary['accuracy']['mean']:.3f}; last epoch loss {history['loss'].iloc[-1]:.3f}, "
          f"val_loss {history['val_loss'].iloc[-1]:.3f}")
print(f"reference (no augmentation, seed {SEED}): test accuracy {without_augmentation['per_run']['accuracy'].iloc[0]:.3f}")
