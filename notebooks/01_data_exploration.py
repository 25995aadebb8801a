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
# # 01 · The data: GTZAN
#
# The paper classifies the ten genres of **GTZAN** (Tzanetakis & Cook, 2002): 1000 clips of 30 s, 100 per genre
# (blues, classical, country, disco, hiphop, jazz, metal, pop, reggae, rock). This notebook looks at the data
# before anything learns from it: where it comes from, whether every file is intact, what the genres sound and
# look like (the paper's Fig 1 and Fig 3), and how to split it so that the test set stays unseen.
#
# Everything here calls `genrelib.data`, `genrelib.audio` and `genrelib.plots`; the notebook holds no logic of
# its own. By default it runs on the **GTZAN mini set** (100 real clips, ids 00000–00009 of each genre), which is
# what this repository's figures were made with.

# %%
import warnings

from IPython.display import Audio, Markdown, display

import genrelib
from genrelib import audio, data, plots

QUICK = genrelib.config.quick_mode()  # CI sets GENRELIB_QUICK=1: fewer clips, same facts
SEED = 0
SAMPLE_RATE = 22050                   # GTZAN's own rate, for looking and listening
LISTEN_SECONDS = 5 if QUICK else 10   # excerpt length for the players
warnings.simplefilter("always", genrelib.GenrelibWarning)

# %% [markdown]
# ## Where the data comes from
#
# `resolve_root` looks, in order, at an explicit folder, `$GENRELIB_DATA`, `./data/gtzan`, a download of the mini
# set, and finally a *synthetic* stand-in (with a loud warning: results on it mean nothing about music). The source
# is printed so every later number says what it was computed on.

# %%
ROOT, SOURCE = data.resolve_root(allow_download=True, allow_synthetic=True)
print(f"data: {ROOT} (found via {SOURCE})")

# %% [markdown]
# ## The index
#
# `load_gtzan` accepts the layouts people actually have (`genres/<genre>/`, `Data/genres_original/<genre>/`, the
# `hip-hop` spelling) and returns one row per track, with header facts that are cheap to read.

# %%
# NBVAL_CHECK_OUTPUT
index = data.load_gtzan(ROOT)
print(f"{len(index)} tracks, {index['genre'].nunique()} genres")
print(index.groupby("genre").size().to_string())

# %%
plots.class_balance(index);

# %% [markdown]
# ## Is every file intact?
#
# `validate` decodes every file and compares checksums with the published ones: the MD5 of every original WAV
# (shipped with genrelib) or, for the mini set's Ogg copies, their SHA-256. A file in another encoding gets
# "unknown" — not "corrupt". Known fault: `jazz.00054` cannot be read in a widespread copy of GTZAN; `validate`
# reports it and `load_gtzan(..., on_error="skip")` leaves it out with a warning.

# %%
# NBVAL_CHECK_OUTPUT
report = data.validate(ROOT)
print(f"{len(report)} tracks checked, {int(report['ok'].sum())} ok")
print("checksums:", report["checksum"].value_counts().to_dict())

# %% [markdown]
# ## Listening: one clip per genre
#
# The first seconds of the first track of each genre. Much of what a classifier must learn is audible at once
# (distorted guitars in metal, the absence of drums in classical); some pairs (rock and country, disco and pop)
# are close even for people — the paper's weakest F1 scores are rock (.53) and pop (.59).

# %%
examples = data.example_tracks(index)
for _, track in examples.iterrows():
    clip = audio.load(track["path"], sr=SAMPLE_RATE)[: LISTEN_SECONDS * SAMPLE_RATE]
    display(Markdown(f"**{track['genre']}** · `{track['track_id']}`"), Audio(clip, rate=SAMPLE_RATE))

# %% [markdown]
# ## Fig 1 · one waveform per genre
#
# The waveform shows loudness over time. In these clips some genres are a dense, steady wall (country, metal,
# rock), some pulse with the beat (disco, hiphop, pop, reggae), and classical and jazz stay quiet and breathe.
# Loudness alone says little about timbre or pitch, and one clip per genre proves nothing about a genre — which is
# why the paper moves on to spectrograms and learned features.

# %%
waveforms = {t["genre"]: audio.load(t["path"], sr=SAMPLE_RATE) for _, t in examples.iterrows()}
fig = plots.fig1_waveforms(waveforms, sr=SAMPLE_RATE, seconds=LISTEN_SECONDS)
plots.save_figure(fig, "fig1_waveforms");

# %% [markdown]
# ## Fig 3 · a mel-spectrogram
#
# A mel-spectrogram shows energy over time and frequency on a perceptual (mel) frequency axis, in decibels. This
# is the kind of picture the VGGish network sees (notebook 03 builds its exact 96 × 64 log-mel patches).

# %%
disco = examples.set_index("genre").loc["disco"]
ax = plots.fig3_mel_spectrogram(waveforms["disco"], sr=SAMPLE_RATE,
                                title=f"Fig 3 - mel-spectrogram of {disco['track_id']}")
plots.save_figure(ax.figure, "fig3_mel_spectrogram");

# %% [markdown]
# ## Splitting by track, before anything else
#
# A test set only measures generalisation if nothing derived from its tracks reaches training. Two traps are
# common in GTZAN tutorials: splitting *segments* (3 s pieces of one track land on both sides) and augmenting
# *before* splitting (a pitch-shifted copy of a test track is trained on). Both inflate accuracy. genrelib splits
# track ids first, and augmentation (notebook 02) only ever sees training tracks.
#
# Three protocols:
#
# * `paper` — stratified random 75/25 by track, validation carved from training. The paper does not give its
#   split, but its per-genre recalls fit about 25 test tracks per genre (.52 = 13/25, .96 = 24/25), i.e. a
#   stratified 75/25 split of the full set.
# * `fault_filtered` — the artist-disjoint split of Kereliuk, Sturm & Larsen (2015), 443/197/290 tracks,
#   with GTZAN's repeated and mislabelled clips removed: the honest benchmark on the full set.
# * `kfold` — stratified k-fold by track (10 folds on the full set, 5 on the mini set), for mean ± std.

# %%
# NBVAL_CHECK_OUTPUT
paper = data.split_random(index, test_size=0.25, valid_size=0.1, seed=SEED)
print(paper.summary().sum().to_dict(), "tracks (paper protocol, seed", SEED, ")")
filtered = data.split_fault_filtered(index)
print({"train": len(filtered.train), "valid": len(filtered.valid), "test": len(filtered.test)},
      "tracks of this set in the fault-filtered split")

# %% [markdown]
# On the mini set the fault-filtered split is lopsided (only 4 test tracks): its lists were made for the full
# collection. For numbers on the mini set the later notebooks use stratified k-fold by track.

# %%
# NBVAL_CHECK_OUTPUT
folds = data.kfold(index, k=5, seed=SEED)
print([len(fold.test) for fold in folds], "test tracks per fold; every track is tested exactly once")

# %% [markdown]
# ## What we learned
#
# * The mini set holds 100 intact clips, 10 per genre; every checksum matches its published value.
# * Genres differ audibly, and visibly in the mel-spectrogram more than in the waveform.
# * Splits are made on track ids, stored with their seed, before augmentation or feature extraction touches the
#   audio. Next: augmenting the *training* tracks (notebook 02).
