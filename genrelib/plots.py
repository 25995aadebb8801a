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

__all__ = ["save_figure", "fig1_waveforms", "fig3_mel_spectrogram"]


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
