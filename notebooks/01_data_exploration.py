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
# its own. By default it runs on the **GTZAN mini set** (100 real clips, 10 per genre: ids 00000–00009 of each genre,
# except jazz, which holds 00011 and 00012 in place of two of them), which is what this repository's figures were made
# with. Point `GENRELIB_DATA` at a collection of your own (one folder per label, any file names) and every cell runs
# on it; the few that only make sense for GTZAN say in one line why they are skipped.

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
# `load_data` reads GTZAN with `load_gtzan`, which accepts the layouts people actually have (`genres/<genre>/`,
# `Data/genres_original/<genre>/`, the `hip-hop` spelling), and any other collection with `load_collection`
# (`<label>/<file>` folders or a CSV manifest; the label plays the genre's part). Either way it returns one row per
# track, with header facts that are cheap to read, and the label set in `index.attrs["labels"]`.

# %%
# NBVAL_CHECK_OUTPUT
index = data.load_data(ROOT)
print(f"{len(index)} tracks, {index['genre'].nunique()} genres")
print(index.groupby("genre").size().to_string())

# %%
plots.class_balance(index);

# %% [markdown]
# ## Is every file intact?
#
# On GTZAN, `validate` decodes every file and compares checksums with the published ones: the MD5 of every original WAV
# (shipped with genrelib) or, for the mini set's Ogg copies, their SHA-256. A file in another encoding gets
# "unknown" — not "corrupt". Known fault: `jazz.00054` cannot be read in a widespread copy of GTZAN; `validate`
# reports it and `load_gtzan(..., on_error="skip")` leaves it out with a warning.

# %%
# NBVAL_CHECK_OUTPUT
if data.gtzan_only(ROOT, reason="checksums are published only for GTZAN's files (every track above was decoded)"):
    report = data.validate(ROOT)
    print(f"{len(report)} tracks checked, {int(report['ok'].sum())} ok")
    print("checksums:", report["checksum"].value_counts().to_dict())

# %% [markdown]
# ## Listening: one clip per genre
#
# The first seconds of the first track of each genre. On GTZAN much of what a classifier must learn is audible at
# once (distorted guitars in metal, the absence of drums in classical); some pairs (rock and country, disco and pop)
# are close even for people — the paper's weakest F1 scores are rock (.53) and pop (.59).

# %%
examples = data.example_tracks(index)
for _, track in examples.iterrows():
    clip = audio.load(track["path"], sr=SAMPLE_RATE)[: LISTEN_SECONDS * SAMPLE_RATE]
    display(Markdown(f"**{track['genre']}** · `{track['track_id']}`"), Audio(clip, rate=SAMPLE_RATE))

# %% [markdown]
# ## Fig 1 · one waveform per genre
#
# The waveform shows loudness over time. In the mini set's clips some genres are a dense, steady wall (country, metal,
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
# is the kind of picture the VGGish network sees (notebook 03 builds its exact 96 × 64 log-mel patches). The paper's
# Fig 3 shows a disco track; a collection without disco shows its first label's first track.

# %%
shown = examples.set_index("genre").loc["disco" if "disco" in waveforms else index.attrs["labels"][0]]
ax = plots.fig3_mel_spectrogram(waveforms[shown.name], sr=SAMPLE_RATE,
                                title=f"Fig 3 - mel-spectrogram of {shown['track_id']}")
plots.save_figure(ax.figure, "fig3_mel_spectrogram");

# %% [markdown]
# ## Splitting by track, before anything else
#
# A test set only measures generalisation if nothing derived from its tracks reaches training. Two traps are
# common in GTZAN tutorials: splitting *segments* (3 s pieces of one track land on both sides) and augmenting
# *before* splitting (a pitch-shifted copy of a test track is trained on). Both inflate accuracy. genrelib splits
# track ids first, and augmentation (notebook 02) only ever sees training tracks.
#
# Four protocols:
#
# * `paper` — stratified random 75/25 by track, validation carved from training. The paper does not give its
#   split, but its per-genre recalls fit about 25 test tracks per genre (.52 = 13/25, .96 = 24/25), i.e. a
#   stratified 75/25 split of the full set.
# * `fault_filtered` — the artist-disjoint split of Kereliuk, Sturm & Larsen (2015), 443/197/290 tracks,
#   with GTZAN's repeated and mislabelled clips removed: the honest benchmark on the full set (GTZAN only).
# * `kfold` — stratified k-fold by track (10 folds on the full set, 5 on the mini set), for mean ± std.
# * `artist` — k-fold by *artist*: no artist has tracks on both sides of a fold (next section says why). On GTZAN the
#   artists come from Sturm's index; a collection needs them in a CSV manifest's `group` column.
#
# On a collection every split keeps a track's excerpts (a long track is cut into 30 s pieces) on one side.

# %%
# NBVAL_CHECK_OUTPUT
paper = data.split_random(index, test_size=0.25, valid_size=0.1, seed=SEED)
print(paper.summary().sum().to_dict(), "tracks (paper protocol, seed", SEED, ")")
if data.gtzan_only(ROOT, reason="the fault-filtered split is Kereliuk et al.'s lists of GTZAN tracks"):
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
# ## Who is playing: the artist effect
#
# A split by track keeps each *recording* on one side, but not each *artist*. Sturm's index of GTZAN (Sturm 2012,
# shipped with genrelib as `data.artist_index()`) names the artist of almost every track, and `load_gtzan` adds it to
# the index. Count the artists per genre of the data in use (GTZAN only: a folder collection names no artists):

# %%
# NBVAL_CHECK_OUTPUT
data.artists_per_genre(index) if data.gtzan_only(ROOT, reason="artists come from Sturm's index of GTZAN") else None

# %% [markdown]
# On the mini set four genres are a single artist each (`single_artist_genres` below), and in pop and jazz one artist
# plays most tracks. Any random or k-fold split of such a set puts the same artist, often the same album and
# producer, on both sides: a classifier can then score by recognising the *artist* — voice, instruments, the sound
# of one studio — and the score says less about *genre* than it seems. This is the **artist effect**: Pampalk,
# Flexer & Widmer (ISMIR 2005) and Flexer (ISMIR 2007) showed that genre accuracy drops when an "artist filter" keeps
# each artist on one side; Sturm (2013, 2014) showed how much of GTZAN's published accuracy it and GTZAN's faults
# explain, and Kereliuk, Sturm & Larsen (2015) built the artist-disjoint `fault_filtered` split for that reason.
#
# genrelib's `artist` protocol (`data.split_by_artist`) is k-fold with artists as groups (scikit-learn's
# `StratifiedGroupKFold`). A genre with one artist cannot be tested on an unseen artist: its tracks are trained on in
# every fold and never tested, and the split says so. Notebook 05 reports its numbers beside the others.

# %%
# NBVAL_CHECK_OUTPUT
if data.gtzan_only(ROOT, reason="artists come from Sturm's index of GTZAN"):
    print("one artist only:", data.single_artist_genres(index))
    artist_folds = data.split_by_artist(index, k=5, seed=SEED)
    print([len(fold.test) for fold in artist_folds], "test tracks per artist-disjoint fold")
    print(artist_folds[0].notes)

# %% [markdown]
# ### The tracks the fault filter leaves out
#
# The fault-filtered lists drop some GTZAN tracks. Sturm found exact and near repetitions (the same recording twice,
# or two versions of one song), mislabelled tracks and distorted ones. For the tracks of this data set that the
# lists leave out, Sturm's index gives the artist and title, and another GTZAN track with the same artist and title
# where there is one — a repeated song:

# %%
# NBVAL_CHECK_OUTPUT
exclusions = data.fault_filtered_exclusions(index) if data.gtzan_only(
    ROOT, reason="the fault-filtered lists and Sturm's index are GTZAN's") else None
exclusions

# %%
by_id = index.set_index("track_id")
for row in () if exclusions is None else exclusions.itertuples():
    clip = audio.load(by_id.at[row.track_id, "path"], sr=SAMPLE_RATE)[: LISTEN_SECONDS * SAMPLE_RATE]
    display(Markdown(f"`{row.track_id}` · {row.artist} – *{row.title}* (same song: {row.same_song_as or 'none'})"),
            Audio(clip, rate=SAMPLE_RATE))

# %% [markdown]
# ## What we learned
#
# * On the GTZAN mini set (the default data): it holds 100 intact clips, 10 per genre; every checksum matches its
#   published value.
# * Four of the mini set's genres are one artist each: its random and k-fold numbers partly measure artist recognition. The
#   `artist` protocol keeps artists apart, and on the full GTZAN the `fault_filtered` split does.
# * Genres differ audibly, and visibly in the mel-spectrogram more than in the waveform.
# * Splits are made on track ids, stored with their seed, before augmentation or feature extraction touches the
#   audio. Next: augmenting the *training* tracks (notebook 02).

# %% [markdown]
# ## Exercises
#
# Each solution is folded away: try first, then unfold the cell below the exercise (in JupyterLab, click the
# collapsed cell; in the book, "Show code").
#
# 1. Which genres of the data in use would a network learn mostly from one artist (at least half the tracks)? (On a
#    folder collection without artists each track counts as its own artist.)
# 2. Make a `paper` split with seed 1. How many of its test tracks have their artist on the training side too?
# 3. Check the artist protocol yourself: for each fold of `split_by_artist(index, k=5, seed=1)`, is any artist on
#    both sides?
# 4. Why does the artist protocol train on the single-artist genres instead of dropping them?

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
table = data.artists_per_genre(index)
table[table["top_tracks"] >= table["tracks"] / 2][["tracks", "top_artist", "top_tracks"]]

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
seed1 = data.split_random(index, seed=1)
artist_of = index.set_index("track_id")["artist"]
training_artists = {artist_of[t] for t in (*seed1.train, *seed1.valid)} - {None}
shared = [t for t in seed1.test if artist_of[t] in training_artists]
print(f"{len(shared)} of {len(seed1.test)} test tracks have their artist in training")

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
for fold in data.split_by_artist(index, k=5, seed=1):
    learned = {artist_of[t] for t in (*fold.train, *fold.valid)} - {None}
    print(f"fold {fold.fold}: {len(fold.test)} test tracks, artists on both sides:",
          sorted({artist_of[t] for t in fold.test} & learned) or "none")

# %% [markdown] tags=["solution"]
# *Answer to 4.* Dropped, they would shrink the task to fewer genres, and the network could never mistake a test
# track for one of them. Trained on, the network still chooses among all the genres (GTZAN's ten), so a pop track mistaken for
# rock still counts as a mistake; only the accuracy is measured on the genres that can be tested on unseen artists.
