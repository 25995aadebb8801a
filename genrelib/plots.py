"""The paper's figures. Plots take arrays or tables, recompute nothing, accept ``ax=None`` and return
what they drew; :func:`save_figure` writes PNG + PDF under ``figures/``.

Notebooks: 01_data_exploration (Fig 1, Fig 3), 02_augmentation (Fig 2), 04_cnn_training (Fig 4, Fig 5),
05_evaluation (Fig 6).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "ipykernel" not in os.environ.get("MPLBACKEND", "") and \
        matplotlib.get_backend().lower() not in {"module://matplotlib_inline.backend_inline", "inline"}:
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .config import GENRES  # noqa: E402

__all__ = ["save_figure", "class_balance", "fig1_waveforms", "fig3_mel_spectrogram", "genre_colors"]


def save_figure(fig, name: str, *, output_dir: str | os.PathLike | None = None, formats=("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``<output_dir>/<name>.png`` and ``.pdf`` (default: ``output_dir("figures")``)."""
    from .storage import atomic_path, output_dir as default_dir

    folder = Path(output_dir) if output_dir else default_dir("figures")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = folder / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            # PDFs embed a creation date by default; leaving it out keeps regenerated figures diff-free.
            metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None} if fmt == "png" else None
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    return paths


def class_balance(index, *, ax=None):
    """Bar chart of tracks per genre (an index from :func:`genrelib.data.load_gtzan`). Returns the Axes."""
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    counts = index["genre"].value_counts().reindex(GENRES, fill_value=0)
    sns.barplot(x=counts.index, y=counts.to_numpy(), hue=counts.index, palette=genre_colors(), legend=False, ax=ax)
    ax.set_ylabel("tracks")
    ax.set_xlabel("")
    ax.tick_params(axis="x", rotation=30)
    return ax


def fig1_waveforms(waveforms: dict[str, np.ndarray], *, sr: int, seconds: float | None = None, axes=None):
    """Fig 1: one waveform per genre, a grid of small panels.

    Parameters
    ----------
    waveforms : dict genre -> np.ndarray [shape=(n,)]
    sr : int > 0 [Hz]
    seconds : float, optional
        Show only the first ``seconds`` of each clip.
    axes : array of matplotlib Axes, optional
        At least ``len(waveforms)`` axes; created (5 x 2 grid) when omitted.

    Returns
    -------
    fig : matplotlib Figure
    """
    import librosa.display

    if axes is None:
        fig, axes = plt.subplots(5, 2, figsize=(11, 10), sharex=True, sharey=True)
    else:
        fig = np.ravel(axes)[0].figure
    for ax, (genre, y) in zip(np.ravel(axes), waveforms.items()):
        if seconds is not None:
            y = y[: int(seconds * sr)]
        librosa.display.waveshow(y, sr=sr, ax=ax, color="tab:blue")
        ax.set_rasterized(True)  # thousands of vertices per panel: keep the PDF small
        ax.set_title(genre)
        ax.set_xlabel("")
        ax.label_outer()
    fig.suptitle("Fig 1 - one waveform per genre")
    fig.supxlabel("time (s)")
    fig.tight_layout()
    return fig


def fig3_mel_spectrogram(y: np.ndarray, *, sr: int, title: str = "", n_mels: int = 128, ax=None):
    """Fig 3: a log-power mel-spectrogram (dB) of one clip.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : int > 0 [Hz]
    n_mels : int
        Mel bands (128 as in librosa's default display; VGGish itself uses 64, see notebook 03).

    Returns
    -------
    ax : matplotlib Axes
    """
    import librosa
    import librosa.display

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4))
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=n_mels)
    image = librosa.display.specshow(librosa.power_to_db(mel, ref=np.max), sr=sr, x_axis="time", y_axis="mel", ax=ax)
    ax.figure.colorbar(image, ax=ax, format="%+2.0f dB")
    ax.set_title(title or "Fig 3 - mel-spectrogram")
    return ax


def genre_colors() -> dict[str, tuple]:
    """One fixed colour per genre, shared by every figure."""
    palette = plt.get_cmap("tab10")
    return {genre: palette(i) for i, genre in enumerate(GENRES)}


# ------------------------------------------------------------------ notebook 03: VGGish front end
# (appended by the vggish branch; Notebook: 03_vggish_features)

__all__ += ["vggish_front_end", "vggish_patches", "embedding_projection"]


def vggish_front_end(y: np.ndarray, *, sr: int, magnitude: np.ndarray, mel_weights: np.ndarray,
                     log_mel: np.ndarray, seconds: float = 3.0, axes=None):
    """VGGish's front end step by step: frames -> magnitude spectrum -> mel weights -> log-mel patches.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        The clip at ``sr`` (16 kHz in the notebook).
    sr : int > 0 [Hz]
    magnitude : np.ndarray [shape=(n_frames, 257)]
        ``vggish.stft_magnitude(y)``: 25 ms frames every 10 ms.
    mel_weights : np.ndarray [shape=(257, 64)]
        ``vggish.mel_filterbank()``.
    log_mel : np.ndarray [shape=(n_frames, 64)]
        ``vggish.log_mel_spectrogram(y, sr=sr)``.
    seconds : float > 0
        How much of the clip to show (whole 0.96 s patches are outlined).
    axes : 4 matplotlib Axes, optional

    Returns
    -------
    fig : matplotlib Figure
    """
    if axes is None:
        fig, axes = plt.subplots(4, 1, figsize=(10, 12))
    else:
        fig = np.ravel(axes)[0].figure
    ax_wave, ax_spec, ax_mel, ax_log = np.ravel(axes)[:4]
    hop, window = 0.010, 0.025
    n_frames = min(len(magnitude), int(seconds / hop))

    t = np.arange(int(0.1 * sr)) / sr  # first 100 ms: frames are visible at this scale
    ax_wave.plot(t * 1000, y[: len(t)], color="tab:blue", lw=0.8)
    for start in np.arange(0, 0.1 - window + 1e-9, hop)[:3]:
        ax_wave.axvspan(start * 1000, (start + window) * 1000, alpha=0.12, color="tab:orange")
    ax_wave.set(title="1. frames: 25 ms windows every 10 ms (first three shaded)", xlabel="time (ms)",
                ylabel="amplitude")

    frequencies = np.linspace(0, sr / 2, magnitude.shape[1])
    extent = (0, n_frames * hop, 0, frequencies[-1] / 1000)
    ax_spec.imshow(20 * np.log10(magnitude[:n_frames].T + 1e-6), origin="lower", aspect="auto", extent=extent,
                   cmap="magma")
    ax_spec.set(title="2. magnitude spectrum |rFFT(512)| of each Hann-windowed frame (dB)",
                xlabel="time (s)", ylabel="frequency (kHz)")

    ax_mel.plot(frequencies / 1000, mel_weights, lw=0.7)
    ax_mel.set(title=f"3. {mel_weights.shape[1]} mel triangles, 125-7500 Hz (HTK scale)",
               xlabel="frequency (kHz)", ylabel="weight")

    ax_log.imshow(log_mel[:n_frames].T, origin="lower", aspect="auto", cmap="magma",
                  extent=(0, n_frames * hop, 0, log_mel.shape[1]))
    for boundary in np.arange(0.96, n_frames * hop, 0.96):
        ax_log.axvline(boundary, color="white", lw=1.5)
    ax_log.set(title="4. log(mel + 0.01), cut into 0.96 s patches of 96 x 64 (white lines)",
               xlabel="time (s)", ylabel="mel band")
    fig.tight_layout()
    return fig


def vggish_patches(patches: dict[str, np.ndarray], *, axes=None):
    """One 96 x 64 log-mel patch per genre, on a shared colour scale.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    patches : dict genre -> np.ndarray [shape=(96, 64)]
    axes : array of matplotlib Axes, optional (at least ``len(patches)``; default a 2 x 5 grid)

    Returns
    -------
    fig : matplotlib Figure
    """
    if axes is None:
        fig, axes = plt.subplots(2, 5, figsize=(13, 5.5), sharex=True, sharey=True)
    else:
        fig = np.ravel(axes)[0].figure
    low = min(float(p.min()) for p in patches.values())
    high = max(float(p.max()) for p in patches.values())
    image = None
    for ax, (genre, patch) in zip(np.ravel(axes), patches.items()):
        image = ax.imshow(patch.T, origin="lower", aspect="auto", cmap="magma", vmin=low, vmax=high,
                          extent=(0, 0.96, 0, patch.shape[1]))
        ax.set_title(genre)
        ax.label_outer()
    fig.supxlabel("time (s)")
    fig.supylabel("mel band")
    fig.suptitle("VGGish input: one 0.96 s log-mel patch per genre")
    if image is not None:
        fig.colorbar(image, ax=np.ravel(axes).tolist(), label="log(mel + 0.01)")
    return fig


def embedding_projection(points: np.ndarray, genres, *, title: str = "", ax=None):
    """Clips as points in a 2-D projection of their embeddings, one colour per genre.

    Notebook: 03_vggish_features.

    Parameters
    ----------
    points : np.ndarray [shape=(n_clips, 2)]
        From ``genrelib.embed.project_clips``.
    genres : sequence of str [length n_clips]
    title : str
        Say which backend, data and projection produced the points.

    Returns
    -------
    ax : matplotlib Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 6))
    genres = np.asarray(genres)
    for genre, color in genre_colors().items():
        mask = genres == genre
        if mask.any():
            ax.scatter(points[mask, 0], points[mask, 1], color=color, label=genre, s=30, alpha=0.85)
    ax.legend(fontsize=8, ncols=2, loc="best")
    ax.set(title=title, xlabel="component 1", ylabel="component 2")
    return ax


__all__ += ["fig2_genre_distribution"]  # appended here, not in the list above, so parallel additions merge


def fig2_genre_distribution(manifest_or_counts, *, ax=None):
    """Fig 2: training clips per genre after augmentation, the original and each method stacked (seaborn).

    Notebook: 02_augmentation.

    Parameters
    ----------
    manifest_or_counts : pd.DataFrame
        Either a manifest from :func:`genrelib.augment.augment_split` (one row per item, with ``genre`` and
        ``method``) or its counts from :func:`genrelib.augment.count_items` (``genre``, ``method``,
        ``count``). Method ``"original"`` marks the un-augmented clips.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        One stacked bar per genre, in GTZAN order; the stack's height is the genre's number of training
        items, each segment one method's share.
    """
    import pandas as pd
    import seaborn as sns

    from .errors import ParameterError

    table = manifest_or_counts
    if not isinstance(table, pd.DataFrame) or not {"genre", "method"} <= set(table.columns):
        raise ParameterError("fig2_genre_distribution needs a DataFrame with 'genre' and 'method' columns")
    if "count" not in table.columns:
        table = table.groupby(["genre", "method"]).size().rename("count").reset_index()
    genres = [g for g in GENRES if g in set(table["genre"])] + sorted(set(table["genre"]) - set(GENRES))
    table = table.assign(genre=pd.Categorical(table["genre"], categories=genres, ordered=True))
    augmented = sorted(set(table["method"]) - {"original"})
    palette = {"original": "0.6", **dict(zip(augmented, sns.color_palette("deep", len(augmented))))}
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4.5))
    # seaborn stacks the last hue at the bottom: originals at the base, legend read top to bottom.
    sns.histplot(data=table, x="genre", hue="method", weights="count", multiple="stack", discrete=True,
                 shrink=0.8, hue_order=[*augmented[::-1], "original"], palette=palette, ax=ax)
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_xlabel("genre")
    ax.set_ylabel("training clips")
    ax.set_title("Fig 2 - training clips per genre, original and augmented")
    return ax


# Appended by the scale-out stage (kept at the end so parallel branches merge cleanly).
__all__ += ["pipeline_stages"]


def pipeline_stages(stages, *, ax=None):
    """The scale-out pipeline as boxes and arrows, each box labelled with where it runs and its cost.

    Notebook: 07_scaling_out.

    Parameters
    ----------
    stages : pd.DataFrame
        One row per stage, in order, with ``stage``, ``runs_on`` and ``seconds_per_clip`` (NaN where not
        measured), e.g. :func:`genrelib.scale.pipeline_stages`.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    from matplotlib.patches import FancyBboxPatch

    if ax is None:
        _, ax = plt.subplots(figsize=(2.3 * len(stages), 2.8))
    n = len(stages)
    width, gap = 1.0, 0.45
    colors = plt.get_cmap("Pastel1")
    for i, row in enumerate(stages.itertuples()):
        x = i * (width + gap)
        ax.add_patch(FancyBboxPatch((x, 0), width, 1, boxstyle="round,pad=0.03", facecolor=colors(i),
                                    edgecolor="0.3"))
        ax.text(x + width / 2, 0.68, row.stage, ha="center", va="center", fontsize=9, weight="bold", wrap=True)
        ax.text(x + width / 2, 0.36, row.runs_on, ha="center", va="center", fontsize=7.5, color="0.25")
        cost = row.seconds_per_clip
        if np.isfinite(cost):
            ax.text(x + width / 2, -0.18, f"{cost * 1000:.0f} ms / clip", ha="center", va="top", fontsize=8.5)
        if i < n - 1:
            ax.annotate("", xy=(x + width + gap - 0.04, 0.5), xytext=(x + width + 0.04, 0.5),
                        arrowprops={"arrowstyle": "-|>", "color": "0.3"})
    ax.set_xlim(-0.1, n * (width + gap) - gap + 0.1)
    ax.set_ylim(-0.45, 1.1)
    ax.set_axis_off()
    ax.set_title("Scale-out pipeline on Ray Data (cost measured per clip in one process)", fontsize=10)
    return ax


# --------------------------------------------------------------------- Figs 4-6 (04_cnn_training, 05_evaluation)
# Extended here rather than in the list above, so each figure's author edits only their own lines.
__all__ += ["fig4_cnn_architecture", "fig5_training_curves", "fig6_confusion_matrix"]

_LAYER_COLORS = {"InputLayer": "#dddddd", "Normalization": "#c7dcef", "Conv1D": "#f4a582", "MaxPooling1D": "#92c5de",
                 "Flatten": "#e0e0e0", "Dense": "#b2df8a", "Dropout": "#fddbc7"}


def fig4_cnn_architecture(model, *, ax=None):
    """Fig 4: the classifier's layers as a column of boxes, read from the built Keras model.

    Each box names the layer, its kind and settings (filters x kernel, pool, units, dropout rate), its
    output shape (without the batch axis) and its number of weights; the figure is drawn from
    :func:`genrelib.model.layer_table`, so it cannot disagree with the code.

    Parameters
    ----------
    model : keras.Model
        From :func:`genrelib.model.build_classifier` (or a loaded checkpoint).
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
    """
    from matplotlib.patches import FancyBboxPatch

    from .model import layer_table

    rows = layer_table(model)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.75 * len(rows) + 1))
    height, gap = 0.62, 0.38
    for i, row in enumerate(rows):
        top = -(i * (height + gap))
        box = FancyBboxPatch((0.05, top - height), 0.9, height, boxstyle="round,pad=0.02",
                                                facecolor=_LAYER_COLORS.get(row["kind"], "#ffffff"), edgecolor="0.3")
        ax.add_patch(box)
        shape = " x ".join(str(n) for n in row["output_shape"])
        settings = f" ({row['detail']})" if row["detail"] else ""
        ax.text(0.5, top - height / 2, f"{row['kind']}{settings}\noutput {shape}  |  {row['params']:,} weights",
                ha="center", va="center", fontsize=9)
        if i < len(rows) - 1:
            ax.annotate("", xy=(0.5, top - height - gap + 0.02), xytext=(0.5, top - height - 0.02),
                        arrowprops={"arrowstyle": "->", "color": "0.3"})
    total = sum(row["params"] for row in rows)
    ax.set_xlim(0, 1)
    ax.set_ylim(-(len(rows) * (height + gap)), 0.15)
    ax.axis("off")
    ax.set_title(f"Fig 4 - the classifier CNN ({total:,} weights)")
    return ax


def fig5_training_curves(histories, *, title: str = "", axes=None):
    """Fig 5: accuracy and loss per epoch, training vs validation.

    Parameters
    ----------
    histories : pd.DataFrame or list of pd.DataFrame
        ``history.csv`` of one or several runs (``epoch``, ``accuracy``, ``loss`` and optionally
        ``val_accuracy``, ``val_loss``). Several runs are drawn as their mean with a band of one
        standard deviation.
    title : str
        Appended to the figure title (say which protocol, backend and data).
    axes : pair of matplotlib Axes, optional

    Returns
    -------
    fig : matplotlib Figure
    """
    import pandas as pd

    frames = [histories] if isinstance(histories, pd.DataFrame) else list(histories)
    if not frames:
        from .errors import ParameterError

        raise ParameterError("no training histories to plot")
    combined = pd.concat(frames, ignore_index=True)
    stats = combined.groupby("epoch").agg(["mean", "std"])
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    fig = axes[0].figure
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for column, label, color in ((metric, "train", "tab:blue"), (f"val_{metric}", "validation", "tab:orange")):
            if column not in stats:
                continue
            mean, std = stats[(column, "mean")], stats[(column, "std")].fillna(0)
            ax.plot(stats.index, mean, color=color, label=label)
            if len(frames) > 1:
                ax.fill_between(stats.index, mean - std, mean + std, color=color, alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric if metric == "accuracy" else "categorical cross-entropy")
        ax.grid(alpha=0.3)
        ax.legend()
    runs = f"mean ± std of {len(frames)} runs" if len(frames) > 1 else "one run"
    fig.suptitle(f"Fig 5 - training curves ({runs}){' - ' + title if title else ''}")
    fig.tight_layout()
    return fig


def fig6_confusion_matrix(counts, *, title: str = "", ax=None):
    """Fig 6: confusion matrix as a seaborn heatmap; each cell shows its count and its share of the row.

    Parameters
    ----------
    counts : pd.DataFrame [shape=(n_classes, n_classes)]
        Rows true genres, columns predicted (:func:`genrelib.evaluate.confusion_matrix`).
    title : str
        Appended to the title (protocol, backend, data, runs pooled).
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        Colours show the row-normalised values (recall on the diagonal).
    """
    import seaborn as sns

    values = counts.to_numpy(dtype=float)
    totals = values.sum(axis=1, keepdims=True)
    shares = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    labels = np.array([[f"{int(n)}\n{s:.2f}" for n, s in zip(row_n, row_s)] for row_n, row_s in zip(values, shares)])
    if ax is None:
        _, ax = plt.subplots(figsize=(8.5, 7))
    sns.heatmap(shares, annot=labels, fmt="", cmap="Blues", vmin=0, vmax=1, square=True, ax=ax,
                xticklabels=list(counts.columns), yticklabels=list(counts.index), annot_kws={"fontsize": 8},
                cbar_kws={"label": "share of the true genre's clips"})
    ax.set_xlabel("predicted genre")
    ax.set_ylabel("true genre")
    ax.set_title(f"Fig 6 - confusion matrix (count, row share){' - ' + title if title else ''}")
    return ax
