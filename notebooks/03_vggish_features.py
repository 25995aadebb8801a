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
# # 03 · VGGish features: from waveform to embeddings
#
# The paper does not classify raw audio: it first turns every clip into a sequence of VGGish embeddings,
# one 128-d vector per 0.96 s, and trains a small CNN on those sequences (notebook 04). This notebook opens
# that step up. It follows one clip through VGGish's front end (frames → magnitude spectrum → mel bands →
# logarithm → patches), looks at one input patch per genre, shows the network (72 M parameters, rebuilt in
# Keras 3 so it can be fine-tuned later), and projects the embeddings of a few clips per genre to 2-D to
# see whether genres already separate before any training.
#
# VGGish's weights are Google's and must be converted once (`genrelib weights vggish --download`). Without
# them the network here is randomly initialised, and the embeddings come from the best offline backend
# (`backend="auto"`); the notebook says which one it used.

# %%
import numpy as np

import genrelib
import genrelib.audio
import genrelib.data
import genrelib.embed
import genrelib.plots
import genrelib.vggish

QUICK = genrelib.config.quick_mode()
SEED = 0
CLIPS_PER_GENRE = 2 if QUICK else 10  # the mini set has 10 per genre; full GTZAN has 100
EXAMPLE_PATCH = 10  # which 0.96 s patch to show per genre (the 11th: past most intros)
BACKEND = "auto"
np.random.seed(SEED)

# %% [markdown]
# ## Data
# GTZAN (or a collection of your own) from `$GENRELIB_DATA`, `./data/gtzan`, a download of the 100-clip mini set,
# or - loudly - a synthetic stand-in. The source is printed so every number below says what it was computed on.

# %%
ROOT, SOURCE = genrelib.data.resolve_root(allow_download=True, allow_synthetic=True)
INDEX = genrelib.data.load_data(ROOT)
print(f"{len(INDEX)} clips from {ROOT} ({SOURCE})")

# %% [markdown]
# ## 1. Frames and their magnitude spectrum
# VGGish hears 16 kHz mono audio (resampled with soxr). It cuts the signal into 25 ms frames (400 samples)
# every 10 ms (160 samples) - short enough that a note's spectrum is steady within a frame - multiplies each
# by a periodic Hann window to soften the frame edges, and keeps the magnitude of a 512-point FFT: 257
# frequency bins from 0 to 8 kHz, 31.25 Hz apart. No padding: n samples give 1 + (n - 400) // 160 frames, 2998 for
# exactly 30 s (480 000 samples); GTZAN's clips run a few milliseconds longer, so on GTZAN the clip below has one frame
# more.

# %%
EXAMPLE = INDEX.iloc[0]
y = genrelib.audio.load(EXAMPLE["path"], sr=genrelib.vggish.SAMPLE_RATE)
magnitude = genrelib.vggish.stft_magnitude(y)
print(f"{EXAMPLE['track_id']}: {len(y)} samples at 16 kHz -> magnitude spectrum {magnitude.shape} (frames, bins)")

# %% [markdown]
# ## 2. Mel bands and the logarithm
# 257 linear bins are more detail than the ear resolves at high frequencies. 64 triangular filters, evenly
# spaced on the HTK mel scale (mel = 1127 ln(1 + f/700)) between 125 and 7500 Hz, pool them into bands that
# are narrow in the bass and wide in the treble. The logarithm (after adding 0.01, so silence is finite)
# compresses loudness the way hearing does. Finally the log-mel spectrogram is cut into non-overlapping
# patches of 96 frames × 64 bands: 0.96 s, the unit VGGish embeds.

# %%
# NBVAL_CHECK_OUTPUT
mel_weights = genrelib.vggish.mel_filterbank()
log_mel = genrelib.vggish.log_mel_spectrogram(y, sr=genrelib.vggish.SAMPLE_RATE)
patches = genrelib.vggish.log_mel_patches(y, sr=genrelib.vggish.SAMPLE_RATE)
print(f"mel filterbank {mel_weights.shape}, one patch {patches.shape[1:]} (frames, mel bands)")

# %%
fig = genrelib.plots.vggish_front_end(y, sr=genrelib.vggish.SAMPLE_RATE, magnitude=magnitude,
                                      mel_weights=mel_weights, log_mel=log_mel)
genrelib.plots.save_figure(fig, "vggish_front_end", note=f"{EXAMPLE['track_id']} of {ROOT.name}: VGGish front end, "
                                                          "waveform -> STFT -> mel -> log-mel patches");

# %% [markdown]
# The same pipeline also exists as a batched `tf.signal` graph in float32, which is what embedding runs
# use (it is faster). It agrees with the float64 numpy version above to far better than 10⁻³:

# %%
# NBVAL_CHECK_OUTPUT
difference = np.abs(genrelib.vggish.log_mel_patches_tf(y) - patches).max()
print(f"numpy and tf.signal front ends agree within 1e-3: {difference <= 1e-3}")

# %% [markdown]
# ## 3. One patch per genre
# What the network sees: one 0.96 s patch from each genre's first clip (the 11th patch, past most intros).
# On GTZAN, classical tends to show smooth, tonal bands; metal and rock fill the upper bands with broadband energy;
# hip-hop and reggae put strong, regular beats into the lowest bands.

# %%
FIRST_PER_GENRE = INDEX.groupby("genre").head(1)
patch_per_genre = {
    row.genre: genrelib.vggish.log_mel_patches(genrelib.audio.load(row.path), sr=16000)[EXAMPLE_PATCH]
    for row in FIRST_PER_GENRE.itertuples()
}
fig = genrelib.plots.vggish_patches(patch_per_genre)
genrelib.plots.save_figure(fig, "vggish_patches", note=f"{ROOT.name}: VGGish log-mel patch {EXAMPLE_PATCH + 1} "
                                                        "(0.96 s) of each genre's first clip");

# %% [markdown]
# ## 4. The network
# VGGish is a VGG-style stack: four blocks of 3×3 convolutions (64, 128, 2×256, 2×512 filters) with 2×2
# max-pooling, then two 4096-unit fully connected layers and a linear 128-unit embedding layer. It was
# trained by Google to tag YouTube soundtracks, so its embedding summarises "what kind of sound" a patch
# is. Layer names match the official variable names one to one, which keeps the weight loaders trivial.

# %%
print(genrelib.vggish.weights_status())
model = genrelib.vggish.VGGish(weights="cached" if genrelib.vggish.converted_weights_available() else None)
model.summary()

# %%
# NBVAL_CHECK_OUTPUT
print(f"{model.count_params():,} parameters")

# %% [markdown]
# ## 5. Embeddings, projected to 2-D
# Each clip becomes a sequence of embeddings (one per patch), cached on disk keyed by the audio's checksum,
# the backend, its weights and its front end. To look at them, each clip's sequence is averaged,
# standardised and projected onto its two principal components (sklearn PCA). `backend="auto"` is VGGish
# when its weights are converted, otherwise the best offline backend installed.
#
# That offline backend is usually **musicnn** (Pons & Serra, 2019): a CNN whose first layers are shaped for music
# (vertical filters for timbre, horizontal ones for rhythm) on 3 s log-mel patches. It comes trained on one of two
# tag collections: the **Million Song Dataset** (MSD; its Last.fm tags, `musicnn-msd`) or **MagnaTagATune** (MTT,
# `musicnn-mtt`). Both tag sets contain genre words, so musicnn has learned genre-like distinctions from labels,
# unlike VGGish's YouTube classes. Its layers use **batch normalisation**: each unit's activations are standardised
# with statistics learned in training, then scaled and shifted, which keeps deep stacks trainable. genrelib uses
# its penultimate dense layer (200 values per 3 s patch) as the embedding.

# %%
BACKEND_NAME = genrelib.embed.resolve_backend(BACKEND)
SUBSET = INDEX.groupby("genre").head(CLIPS_PER_GENRE)
EMBEDDED = genrelib.embed.embed_dataset(SUBSET, backend=BACKEND_NAME, progress=not QUICK)
print(f"backend {BACKEND_NAME}: {len(EMBEDDED)} clips, {EMBEDDED['n_patches'].sum()} patches")

# %%
points = genrelib.embed.project_clips(genrelib.embed.load_embeddings(EMBEDDED), method="pca", seed=SEED)
ax = genrelib.plots.embedding_projection(
    points, EMBEDDED["genre"],
    title=f"{BACKEND_NAME} embeddings (clip means, PCA): {len(SUBSET)} clips, {SOURCE} data")
genrelib.plots.save_figure(ax.figure, "embedding_projection",
                           note=f"{ROOT.name}, {len(SUBSET)} clips: {BACKEND_NAME} clip-mean embeddings, PCA to 2-D");

# %% [markdown]
# ## 6. YAMNet beside VGGish
# **YAMNet** (Plakal & Ellis, 2019) is Google's other AudioSet network, and genrelib has it as the `yamnet`
# backend (`genrelib/yamnet.py`, a native Keras 3 port). It shares VGGish's front end - the same 25 ms / 10 ms
# frames, 512-point magnitude spectrum and 64 HTK mel bands - with two differences: the logarithm adds 0.001
# instead of 0.01, and its 0.96 s patches start every 0.48 s, so consecutive patches overlap by half (the audio
# is zero-padded so its last samples fall into a patch). The network is a **MobileNet-v1** instead of a VGG:
# after one ordinary 3×3 convolution come 13 *depthwise-separable* layers, each a 3×3 convolution that filters
# every channel on its own (depthwise) followed by a 1×1 convolution that mixes the channels (pointwise), far
# fewer weights than full 3×3 convolutions. Global average pooling gives a 1024-d embedding (VGGish: 128-d),
# and one dense layer scores the **521 AudioSet classes** with independent sigmoids. The weights come from the
# official TF-Lite file, whose activations are ReLU6 (min(max(x, 0), 6)); genrelib builds the network with
# ReLU6 for them.

# %%
# NBVAL_CHECK_OUTPUT
import genrelib.yamnet

yamnet_patches = genrelib.yamnet.log_mel_patches(y, sr=genrelib.yamnet.SAMPLE_RATE)
print(f"log offset: VGGish {genrelib.vggish.LOG_OFFSET}, YAMNet {genrelib.yamnet.LOG_OFFSET}")
print(f"{EXAMPLE['track_id']}: VGGish {patches.shape[0]} patches {patches.shape[1:]}, one every 0.96 s; "
      f"YAMNet {yamnet_patches.shape[0]} patches {yamnet_patches.shape[1:]}, one every "
      f"{genrelib.yamnet.PATCH_HOP_SAMPLES / genrelib.yamnet.SAMPLE_RATE} s")
yamnet_model = genrelib.yamnet.YAMNet()  # the architecture only (random weights): counting costs nothing
print(f"YAMNet: {yamnet_model.count_params():,} parameters, {genrelib.yamnet.EMBEDDING_SIZE}-d embedding, "
      f"{len(genrelib.yamnet.CLASS_NAMES)} AudioSet classes; VGGish: {model.count_params():,} parameters, "
      f"{genrelib.vggish.EMBEDDING_SIZE}-d embedding")

# %% [markdown]
# AudioSet's ontology has genre classes of its own ("Blues", "Classical music", "Heavy metal", ...), so YAMNet
# can name a genre with no training at all: `genrelib predict --zero-shot FILE` and, over a whole data set
# through the results tables, `genrelib evaluate --zero-shot`. When the official weights are at hand (the
# TF-Lite file is converted on first use), here are the example clip's top AudioSet classes (any audio has them, so this
# runs on any collection). Read zero-shot numbers on GTZAN with care: AudioSet is YouTube clips, GTZAN songs from CDs and radio of 2000-2001, and no
# audit of their overlap is known to us - the same commercial songs may be on YouTube.

# %%
if genrelib.yamnet.converted_weights_available() or genrelib.yamnet.default_tflite_path() is not None:
    for name, score in genrelib.yamnet.top_classes(y, sr=genrelib.yamnet.SAMPLE_RATE, top=5):
        print(f"{name:24s} {score:.3f}")
else:
    print("no YAMNet weights here: see `genrelib weights yamnet --help`")

# %% [markdown]
# ## What we learned
# - VGGish's input is a fixed, simple pipeline: 25 ms / 10 ms frames, a 512-point magnitude spectrum, 64
#   HTK mel bands between 125 and 7500 Hz, log(x + 0.01), and 0.96 s patches. A 30 s clip gives 31 patches,
#   so each GTZAN clip becomes a 31 × 128 embedding sequence - the input of the CNN in notebook 04.
# - On GTZAN, genres already look different at the input: tonal bands (classical, jazz) against broadband energy
#   (metal, rock) and strong low-frequency beats (hip-hop, reggae).
# - In the projection, clips of a genre tend to lie near each other although the projection itself used no
#   genre label. The network behind it did learn from labels: musicnn was trained on the Million Song Dataset's
#   Last.fm tags (MSD; `musicnn-mtt` on MagnaTagATune's), and those tags include genres such as rock, pop, jazz,
#   blues and hip-hop. So the picture shows what a tag-trained network already separates, not genre emerging from
#   sound alone; and on the mini set, where four genres are one artist each (notebook 01), clusters are partly
#   artists and albums. How much of it a classifier can use is measured in notebooks 04-05. (With the mfcc fallback backend the picture is coarser: it is a classical baseline, not VGGish.)
# - YAMNet uses the same front end with a smaller log offset and half-overlapping patches, and a MobileNet-v1
#   of depthwise-separable convolutions whose 1024-d embedding and 521 AudioSet scores are both at hand; the
#   printed counts above compare its size with VGGish's. Its measured accuracies on the mini set are in
#   `results/backends.md` (linear probe) and `results/README.md` (CNN, zero-shot).
# - Full settings (`GENRELIB_QUICK=0`) embed 10 clips per genre on the mini set; on full GTZAN, set
#   `CLIPS_PER_GENRE = 100`. `genrelib embed --backend vggish` embeds a whole data folder from the shell.

# %% [markdown]
# ## Exercises
#
# 1. How many VGGish patches does a 10 s clip give? Work it out from the frame and patch sizes above, then check
#    with `vggish.log_mel_patches`.
# 2. VGGish adds 0.01 before the logarithm, YAMNet 0.001. What value does a silent band get in each?
# 3. Fit the linear probe yourself: standardise the clip means of the embeddings above and cross-validate a
#    scikit-learn logistic regression (three lines). Then do the same with the hand-crafted `mfcc` backend.

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
n = 10 * genrelib.vggish.SAMPLE_RATE
frames = 1 + (n - 400) // 160
print(f"by hand: {frames} frames -> {frames // 96} patches;",
      "log_mel_patches:", genrelib.vggish.log_mel_patches(np.zeros(n, dtype=np.float32) + 1e-3, sr=16000).shape[0])

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
print(f"log(0 + 0.01) = {np.log(0.01):.2f} (VGGish), log(0 + 0.001) = {np.log(0.001):.2f} (YAMNet)")

# %%
# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
import genrelib.baselines
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

folds = min(5, int(SUBSET["genre"].value_counts().min()))
for name, frame in ((BACKEND_NAME, EMBEDDED),
                    ("mfcc", genrelib.embed.embed_dataset(SUBSET, backend="mfcc", progress=False))):
    means = genrelib.embed.clip_means(genrelib.embed.load_embeddings(frame))
    scores = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)), means,
                             frame["genre"], cv=folds)
    print(f"{name}: {scores.mean():.3f} ± {scores.std():.3f} over {folds} folds")
