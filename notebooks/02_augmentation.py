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
# # 02 · Augmentation: more training clips, none from a test track
#
# The paper enlarges GTZAN with three kinds of altered copies - **time stretching** (tempo changes, pitch
# does not), **pitch shifting** (pitch changes, tempo does not) and **white noise** - and shows the
# per-genre counts after augmentation (its Fig 2). It gives no parameters; ours are in
# `genrelib.config.AugmentConfig` with the reasons: rate 0.8-1.25, ±2 semitones, signal-to-noise ratio
# (SNR) 15-30 dB, one copy per method and training track.
#
# This notebook lets you hear each method, shows what each costs, augments the training tracks of a split
# into an on-disk cache, draws Fig 2 and shows the guard that keeps every copy of a validation or test
# track out of training. That last point matters more than any parameter: a pitch-shifted copy of a test
# track in the training set is a near-duplicate of the test item, and the test accuracy stops meaning
# anything.

# %%
import time

from IPython.display import Audio, display

import genrelib
import genrelib.augment
import genrelib.audio
import genrelib.data
import genrelib.plots
import genrelib.widgets

QUICK = genrelib.config.quick_mode()
SEED = 0
SR = 16000  # Hz; the rate of the cached copies and of the embedding networks (notebook 03)
CONFIG = genrelib.config.AugmentConfig()
# Quick mode (CI) augments every third training track; the full run all of them.
TRACK_STEP = 3 if QUICK else 1

# %% [markdown]
# ## Data and split
#
# Augmentation comes *after* the split: only training tracks are altered, so every copy stays on its
# source track's side. We use the `paper` protocol from notebook 01 (stratified by genre, 65 / 10 / 25 %
# of the tracks for training / validation / test).

# %%
ROOT, SOURCE = genrelib.data.resolve_root(allow_download=True, allow_synthetic=True)
index = genrelib.data.load_data(ROOT)  # GTZAN, or your own collection
split = genrelib.data.split_random(index, seed=SEED)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(index)} tracks; split {split.protocol!r} (seed {split.seed}): "
      f"{len(split.train)} train / {len(split.valid)} valid / {len(split.test)} test")
print(split.summary().to_string())

# %% [markdown]
# ## Listen to each method
#
# One training clip at 16 kHz, then each method at the edge of its range, where the change is easiest to
# hear: 25 % faster, two semitones up, and noise at 15 dB SNR.
#
# Both time stretching and pitch shifting use a **phase vocoder** (librosa's): the clip's short-time Fourier
# transform (STFT; the spectrum of short overlapping frames) is resampled along time - more or fewer frames for the
# same music - while each frequency bin's phase is advanced consistently, so tones stay smooth instead of
# warbling. That changes tempo and keeps pitch; a pitch shift is a time stretch followed by resampling the audio
# back to its length, which moves every frequency by the factor 2^(steps/12). Each function takes float32 audio and
# returns float32 audio of the same length (a sped-up clip loops back to its start to fill the 30 s).

# %%
track = index.set_index("track_id").loc[split.train[0]]
y = genrelib.audio.load(track["path"], sr=SR)
examples = {
    "original": y,
    "time_stretch rate=1.25": genrelib.augment.time_stretch(y, rate=CONFIG.stretch_rate_range[1]),
    "pitch_shift n_steps=+2": genrelib.augment.pitch_shift(y, sr=SR, n_steps=CONFIG.pitch_steps_range[1]),
    "white_noise snr_db=15": genrelib.augment.add_white_noise(y, snr_db=CONFIG.noise_snr_db_range[0], rng=SEED),
}

# %%
for name, audio in examples.items():
    print(f"{split.train[0]} - {name}")
    display(Audio(audio[: 10 * SR], rate=SR))

# %% [markdown]
# The same four clips as mel-spectrograms on one colour scale (the picture stays in the saved notebook, where the
# players and the panel below do not play): the noise lifts the dark floor, the pitch shift moves every harmonic
# up, the tempo change packs the note onsets closer together.

# %%
fig = genrelib.plots.augmentation_spectrograms(examples, sr=SR, seconds=8)
genrelib.plots.save_figure(fig, "augmentation_spectrograms",
                           note=f"{split.train[0]} of {ROOT.name}: first 8 s, original and each method at the edge of "
                                f"its range");

# %% [markdown]
# ## The listening panel
#
# Pick a genre, a training track and a method, move the slider and compare: both players use one gain,
# so a louder or noisier copy sounds louder; the figure shows both waveforms and mel-spectrograms on one
# colour scale (added noise lifts the dark floor, a pitch shift moves every harmonic up or down, a tempo
# change stretches the note onsets). The panel augments an 8 s excerpt of the track (it says which) and redraws one
# figure in place, so that a change answers within a second; `benchmarks/bench_panel.py` measures each kind of
# change (`results/bench_panel.json`). A saved notebook shows the panel as it was saved; after reopening it, run the
# cell again to use it.

# %%
panel = genrelib.widgets.augmentation_panel(index[index["track_id"].isin(split.train)], config=CONFIG)
panel

# %% [markdown]
# ## What each method costs
#
# Time per 30 s clip at 16 kHz on this machine, at both ends of each range (best of a few runs; the line above the
# table gives the range measured). Both phase-vocoder methods cost far more than the noise, more for a slower tempo
# or a higher pitch (more frames to make); the noise is nearly free. `augment_split` computes a clip's short-time Fourier transform
# (STFT) once and feeds both phase-vocoder methods from it, decodes each source once, and runs on every
# core (`benchmarks/bench_augment.py` measures the whole stage against plain serial librosa).

# %%
costs = genrelib.augment.method_costs(y, sr=SR, config=CONFIG, repeats=1 if QUICK else 3)
vocoder, noise = costs[costs["method"] != "white_noise"], costs[costs["method"] == "white_noise"]
print(f"phase vocoder: {vocoder['milliseconds'].min():.0f}-{vocoder['milliseconds'].max():.0f} ms per clip; "
      f"white noise: at most {noise['milliseconds'].max():.0f} ms")
costs.round({"milliseconds": 0, "x_realtime": 0, "duration": 1}).astype({"milliseconds": int, "x_realtime": int})

# %% [markdown]
# ## Augment the training tracks
#
# `augment_split` draws each copy's parameters from the ranges above with a generator seeded by the run's
# seed, the track id, the method and the copy number, so the result does not depend on the number of
# worker processes. Each copy is written once as a 16 kHz FLAC file whose name holds a key of the source
# file's checksum, the method and its parameters; the manifest lists every training item - the original
# clips too - with its source track, method, parameters (JSON) and path.

# %%
manifest = genrelib.augment.augment_split(index, split, config=CONFIG, seed=SEED,
                                          track_ids=split.train[::TRACK_STEP])
manifest.head(8)

# %% [markdown]
# A second run finds every file in the cache and decodes nothing:

# %%
start = time.perf_counter()
again = genrelib.augment.augment_split(index, split, config=CONFIG, seed=SEED,
                                       track_ids=split.train[::TRACK_STEP], progress=False)
print(f"second run: {time.perf_counter() - start:.2f} s, same manifest: {again.equals(manifest)}")

# %% [markdown]
# ## Fig 2 - training clips per genre
#
# The paper's Fig 2: per genre, the original training clips and their augmented copies. With one copy
# per method, augmentation quadruples the training set and leaves the genre balance as the split made it.

# %%
ax = genrelib.plots.fig2_genre_distribution(manifest)
genrelib.plots.save_figure(ax.figure, "fig2_genre_distribution",
                           note=f"{ROOT.name} ({SOURCE}): {manifest['track_id'].nunique()} training tracks of the "
                                f"{split.protocol} split (seed {split.seed}) and their augmented copies")
genrelib.augment.count_items(manifest).pivot(index="genre", columns="method", values="count")

# %% [markdown]
# ## The leakage guard
#
# `assert_no_leakage(split, table)` checks that every item of a training table derives from a training
# track of the split; training (notebook 04) calls it before fitting. It passes on our manifest:

# %%
genrelib.augment.assert_no_leakage(split, manifest)
print(f"{len(manifest)} items, all from the {manifest['track_id'].nunique()} training tracks augmented here")

# %% [markdown]
# Asking to augment a test track fails before any work is done:

# %%
try:
    genrelib.augment.augment_split(index, split, track_ids=[split.test[0]])
except genrelib.LeakageError as error:
    print(f"LeakageError: {error}")

# %% [markdown]
# And a manifest that gained a copy of a test track - say, from an earlier run with another split - is
# caught by the guard:

# %%
tampered = manifest.copy()
tampered.loc[1, "track_id"] = split.test[0]
try:
    genrelib.augment.assert_no_leakage(split, tampered)
except genrelib.LeakageError as error:
    print(f"LeakageError: {error}")

# %% [markdown]
# ## What we learned
#
# - Time stretching and pitch shifting change tempo and pitch independently (librosa's phase vocoder);
#   white noise at 15-30 dB SNR is audible yet leaves the music on top.
# - Augmented copies are cached per clip, keyed by content and parameters, so the stage runs once and a
#   later run, or an interrupted one, reuses what exists.
# - Only training tracks are augmented, and a guard used by later stages proves it for any training
#   table. The full run (`make demo`) augments all training tracks; the counts in Fig 2 are then four
#   per training track, split `paper`, seed 0.

# %% [markdown]
# ## Exercises
#
# 1. Widen the noise range: add noise at 5 dB SNR and *measure* the SNR you got (signal power over noise power,
#    in dB). Does it match what you asked for?
# 2. Does `time_stretch` keep the pitch, and does `pitch_shift` keep the tempo? Estimate the tempo
#    (`librosa.beat.beat_track`) of the original and of each copy, and how many semitones each copy's average chroma
#    (`librosa.feature.chroma_stft`, the energy of the 12 pitch classes) is rotated against the original's.
# 3. Ask `augment_split` for a copy of a *validation* track. What happens, and why is that right?

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
import librosa
import numpy as np

noisy = genrelib.augment.add_white_noise(y, snr_db=5.0, rng=SEED)
measured = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean((noisy - y).astype(np.float64) ** 2))
print(f"asked for 5.0 dB, measured {measured:.2f} dB")

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
def mean_chroma(clip):
    return librosa.feature.chroma_stft(y=clip[: 15 * SR], sr=SR).mean(axis=1)


reference = mean_chroma(y)
for name in ("original", "time_stretch rate=1.25", "pitch_shift n_steps=+2"):
    clip = examples[name]
    tempo, _ = librosa.beat.beat_track(y=clip[: 15 * SR], sr=SR)
    chroma = mean_chroma(clip)
    rotation = max(range(-5, 7), key=lambda steps: np.corrcoef(np.roll(reference, steps), chroma)[0, 1])
    print(f"{name}: tempo {float(np.atleast_1d(tempo)[0]):.0f} BPM, chroma rotated by {rotation:+d} semitones")

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
try:
    genrelib.augment.augment_split(index, split, track_ids=[split.valid[0]])
except genrelib.LeakageError as error:
    print(f"LeakageError: {error}")
# Validation picks the epoch: a copy of a validation track in training would make that choice optimistic too.
