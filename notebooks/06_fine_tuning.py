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
# # 06 · Fine-tuning the backbone end to end
#
# Notebooks 03–05 train the paper's CNN on *frozen* embeddings: the pretrained network (VGGish or musicnn) is a
# fixed feature extractor. The paper goes one step further and fine-tunes VGGish for genre classification. This
# notebook does that for real, and measures whether it helps: one end-to-end Keras model
#
# > log-mel patches → pretrained backbone, patch by patch → the clip's sequence of embeddings → the paper's CNN
#
# trained in two stages on the same folds and seeds as a frozen-features CNN. The logic is in `genrelib.finetune`;
# `genrelib finetune` on the command line does the same.
#
# The backbone here is **musicnn-msd**, the Keras 3 port of musicnn trained on the Million Song Dataset, because its
# weights install offline (`pip install --no-deps musicnn==0.1.0`); `BACKBONE = "vggish"` runs the same code on
# VGGish once its converted weights are cached (`genrelib weights vggish`).

# %%
from pathlib import Path

import pandas as pd

from IPython.display import Markdown, display

import genrelib
from genrelib import data, finetune, findings, plots, statistics
from genrelib.config import Config

QUICK = genrelib.config.quick_mode()  # CI: 3 tracks per genre, 3 folds, few epochs, one augmentation method
SEED = 0
BACKBONE = "musicnn-msd"
UNFREEZE = 1                          # blocks that train in stage 2, from the top; "all" is meant for a GPU
PER_GENRE = 3 if QUICK else None      # None: every track
FOLDS = 3 if QUICK else 5
N_SEEDS = 1                           # 5 folds x 1 seed here; the 3-seed measurement is tools/finetune_cv.py
HEAD_EPOCHS = 3 if QUICK else 30      # stage 1 (Table 1: 30)
FINETUNE_EPOCHS = 2 if QUICK else 10  # stage 2
FINETUNE_LEARNING_RATE = 1e-5         # stage 2: 100 x below Table 1's 1e-3
QUICK_SETTINGS = {"augment.methods": ["white_noise"]} if QUICK else {}
CONFIG = Config(seed=SEED, protocol="kfold").replace(**{
    "train.folds": FOLDS, "train.n_seeds": N_SEEDS, "train.epochs": HEAD_EPOCHS, **QUICK_SETTINGS})

# %% [markdown]
# ## The backbone and its blocks
#
# `load_backbone` returns a new, independent Keras model from log-mel patches to the embedding the musicnn-msd
# backend uses (the 200-unit `penultimate` layer). Fine-tuning counts *blocks* from the top: for musicnn the dense
# layer under the embedding, then the three mid-end convolutions, then the front end's timbral and temporal filters.

# %%
backbone = finetune.load_backbone(BACKBONE)

# %%
# NBVAL_CHECK_OUTPUT
print(finetune.block_table(backbone).to_string(index=False))

# %% [markdown]
# ## What trains, and why batch norm does not
#
# `unfreeze_top` makes the top `UNFREEZE` blocks trainable and freezes everything else (last column). Batch-norm
# layers always stay frozen: a frozen batch-norm layer normalises with its *moving* statistics (inference mode).
# With batches of 32 clips, batch statistics would be noisy and would wash out what pretraining learned. In Keras 3
# calling the backbone with `training=False` is not enough: a functional model passes the outer `training=True` on
# to nested models, so only `trainable = False` keeps a batch-norm layer in inference mode.

# %%
# NBVAL_CHECK_OUTPUT
trained = finetune.unfreeze_top(backbone, unfreeze=UNFREEZE)
print(finetune.block_table(backbone).to_string(index=False))

# %% [markdown]
# ## Computing the frozen part once
#
# A frozen layer computes the same numbers in every epoch. `split_backbone` cuts the network where the trainable part
# begins: the *bottom* runs once per clip and its outputs are cached on disk; each epoch runs only the *top* and the
# classifier head. The arithmetic is that of the end-to-end model (a unit test checks `top(bottom(x)) == model(x)`);
# on 2 CPU cores it turns hours into minutes. For the top block of musicnn the cut is one 1506-d vector per patch.

# %%
# NBVAL_CHECK_OUTPUT
bottom, top = finetune.split_backbone(backbone.model)
print("cut:", [tuple(tensor.shape[1:]) for tensor in bottom.outputs])
print("layers run every epoch:", [layer.name for layer in top.layers if layer.weights])

# %% [markdown]
# ## Data
#
# The data search of notebook 01 (the mini set by default, or your own collection). The splits are the classifier's (`kfold`, stratified by
# genre, validation tracks carved from each fold's training tracks), so frozen and fine-tuned models see the same
# tracks.

# %%
ROOT, SOURCE = data.resolve_root(allow_download=True, allow_synthetic=True)
index = data.load_data(ROOT)
if PER_GENRE:
    index = data.example_tracks(index, per_genre=PER_GENRE)
print(f"data: {ROOT} (via {SOURCE}), {len(index)} tracks")

# %% [markdown]
# ## The schedule
#
# 1. **Head only** (stage 1): the backbone is frozen and the paper's CNN trains on its embeddings with Table 1
#    (RMSprop, learning rate 1e-3, 30 epochs, batch 32); the epoch with the lowest validation loss is kept. This
#    stage alone is the *frozen-features CNN*.
# 2. **Fine-tuning** (stage 2): from there, the top block(s) train with the head at a 100 times smaller learning rate
#    (1e-5), so that the pretrained weights move a little towards genre and are not overwritten by the noisy
#    gradients of a head that is still learning; again the best validation epoch is kept.
#
# Log-mel patches are computed once per clip and cached; augmented copies (time stretch, pitch shift, noise) are
# made of training tracks only, and the leakage guard checks the training clips before each stage. Every epoch ends
# with a backup (Keras' `BackupAndRestore`): an interrupted run resumes where it stopped, with the same result.
# Before it starts, each run prints its plan and a time estimate measured on this machine.

# %%
runs = finetune.run_protocol(index, backbone=BACKBONE, unfreeze=UNFREEZE, config=CONFIG,
                             finetune_epochs=FINETUNE_EPOCHS, finetune_learning_rate=FINETUNE_LEARNING_RATE)

# %% [markdown]
# ## Learning curves of one run
#
# Stage 1 on the left of the dotted line, stage 2 on the right. Training loss is measured with dropout on and over
# the augmented copies too; validation loss is on a handful of tracks, hence its jumps.

# %%
history = finetune.load_run(runs[0])["history"]
ax = history[["loss", "val_loss"]].plot(xlabel="epoch (both stages)", ylabel="categorical cross-entropy",
                                        title=f"{BACKBONE}, unfreeze {UNFREEZE}: {runs[0].name}")
ax.axvline((history["stage"] == "frozen").sum() - 0.5, color="gray", linestyle=":")
plots.save_figure(ax.figure, "finetune_curves", note=f"{len(index)} tracks of {ROOT.name} ({SOURCE}): both stages of "
                                                     f"fine-tuning run {runs[0].parent.name}/{runs[0].name}");

# %% [markdown]
# ## Frozen vs fine-tuned, run by run
#
# Test accuracy of each run after stage 1 (frozen) and after stage 2 (fine-tuned): the same test tracks, the same
# head initialisation and training clips, so the difference is paired.

# %%
per_run, table = finetune.summarize(runs)
print(table.attrs["protocol"])
display(per_run)
table

# %% [markdown]
# The same comparison as a paired test over test tracks (notebook 05): each track's correctness after stage 1 and
# after stage 2, averaged over the runs that tested it, the exact McNemar test on the tracks where the two stages
# differ, and a bootstrap interval of the difference.

# %%
tested = pd.concat([finetune.load_run(run)["predictions"] for run in runs], ignore_index=True)
tested = tested[tested["side"] == "test"]
statistics.paired_comparison(tested[tested["stage"] == "finetuned"], tested[tested["stage"] == "frozen"])

# %% [markdown]
# ## The fine-tuned model on a test clip
#
# `load_finetuned` rebuilds the end-to-end model from the run's weights: it takes a clip's log-mel patches and
# returns genre probabilities, through the whole backbone (no cache involved).

# %%
model, backbone = finetune.load_finetuned(runs[0])
test_track = finetune.load_run(runs[0])["split"].test[0]
patches = finetune.patch_dataset(index[index["track_id"] == test_track], backbone=backbone, progress=False)
probabilities = model.predict(finetune.load_patches(patches, n_patches=model.input.shape[1]), verbose=0)[0]
print(test_track, "->", index.attrs["labels"][probabilities.argmax()], f"({probabilities.max():.2f})")

# %% [markdown]
# ## The measurement: 5 folds × 3 seeds on the mini set
#
# `tools/finetune_cv.py` runs the full protocol for the default schedule, a control (the head alone continues for
# the same extra epochs) and two variations, and writes `results/finetune.md`:

# %%
RESULTS = Path(genrelib.__file__).parents[1] / "results" / "finetune.md"  # the repository's committed measurement
display(Markdown(RESULTS.read_text() if RESULTS.exists() else f"`{RESULTS}` is missing: `python tools/finetune_cv.py`"))

# %% [markdown]
# ## What this shows
#
# * Fine-tuning is a schedule, not a switch: head first on the frozen network, then the top block(s) at a much
#   smaller learning rate, batch norm frozen, the best validation epoch kept at each stage.
# * Computing the frozen part once makes top-block fine-tuning as cheap as training the head; fine-tuning the whole
#   network (`unfreeze="all"`) runs the backbone in every epoch and is meant for a GPU.
# * Whether fine-tuning helps is a paired measurement with a control (`results/finetune.md`, the table above: the
#   same 5 folds × 3 seeds for every setting, and a head-only control that trains the head for the same extra
#   epochs with no backbone weight free). A gain counts only where it exceeds the control's; the next cell reads
#   each setting from `results/finetune.json`.

# %%
display(Markdown(findings.describe_finetune(findings.load_results(RESULTS.parent)) or "no fine-tuning results"))

# %% [markdown]
# ## Exercises
#
# 1. Unfreeze two blocks instead of one: which layers train then, and how many backbone weights is that?
# 2. With two blocks unfrozen, where does the cut between the cached bottom and the per-epoch top fall?
# 3. Stage 2 uses a learning rate 100 times below Table 1's. What would a rate of 1e-3 risk for the pretrained
#    weights? (Try it with `finetune_learning_rate=1e-3` on one fold if you have a few minutes.)

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
two = finetune.load_backbone(BACKBONE)
trained_two = finetune.unfreeze_top(two, unfreeze=2)
print(finetune.block_table(two).to_string(index=False))
print("trained in stage 2:", trained_two)

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
bottom_two, top_two = finetune.split_backbone(two.model)
print("cut:", [tuple(tensor.shape[1:]) for tensor in bottom_two.outputs])
print("layers run every epoch:", [layer.name for layer in top_two.layers if layer.weights])

# %% [markdown] tags=["solution"]
# *Answer to 3.* The head starts random, so its first gradients are large and noisy; at 1e-3 they would push the
# unfrozen pretrained layers far from what they learned on the Million Song Dataset within a few steps ("catastrophic
# forgetting"), and a hundred training clips cannot teach them back. The small rate lets them move only a little
# towards genre.
