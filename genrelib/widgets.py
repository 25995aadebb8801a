"""Listening panel for the augmentation methods (ipywidgets): hear and see original and augmented side by side.

Notebook: 02_augmentation.

:func:`augmentation_panel` returns an :class:`AugmentationPanel`; displaying it in Jupyter shows genre,
track and method pickers, a parameter slider, two audio players (``IPython.display.Audio``) and a figure
with both waveforms and mel-spectrograms. Its state (``original``, ``augmented``, ``audio``, ``figure``) is
plain Python, so it can be tested without a browser.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import pandas as pd

from .checks import positive_int, positive_number
from .collection import labels_of
from .config import AugmentConfig
from .errors import ParameterError

__all__ = ["SLIDERS", "AugmentationPanel", "augmentation_panel", "plot_comparison"]

#: What the panel shows beside its slider while it recomputes.
BUSY = "<i>computing ...</i>"

#: Per method: slider label, AugmentConfig field giving its range, step, value the panel starts at.
SLIDERS = {
    "time_stretch": ("rate", "stretch_rate_range", 0.01, "high"),
    "pitch_shift": ("semitones", "pitch_steps_range", 0.1, "high"),
    "white_noise": ("SNR (dB)", "noise_snr_db_range", 0.5, "low"),
}


def plot_comparison(original: np.ndarray, augmented: np.ndarray, *, sr: int, title: str = "", axes=None):
    """Waveforms (top) and mel-spectrograms in dB (bottom) of an original clip and its augmented copy.

    Notebook: 02_augmentation.

    Parameters
    ----------
    original, augmented : np.ndarray [shape=(n,)]
    sr : int > 0 [Hz]
    title : str
        Describes the augmentation, e.g. ``"pitch_shift n_steps=2"``.
    axes : array of 4 matplotlib Axes [shape=(2, 2)], optional

    Returns
    -------
    fig : matplotlib Figure
        Both spectrograms share one colour scale (dB relative to the louder clip's peak), so added noise
        shows as a raised floor.
    """
    import librosa
    import librosa.display
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(2, 2, figsize=(11, 5.5), sharex=True)
    fig = np.ravel(axes)[0].figure
    mels = [librosa.feature.melspectrogram(y=y, sr=sr, n_mels=64) for y in (original, augmented)]
    reference = max(float(m.max()) for m in mels) or 1.0
    peak = max(float(np.max(np.abs(original))), float(np.max(np.abs(augmented))), 1e-9)
    for column, (name, y, mel) in enumerate(zip(("original", "augmented"), (original, augmented), mels)):
        librosa.display.waveshow(y, sr=sr, ax=axes[0, column], color="tab:blue" if column == 0 else "tab:orange")
        axes[0, column].set(title=f"{name}: waveform", ylim=(-1.05 * peak, 1.05 * peak), xlabel="")
        image = librosa.display.specshow(librosa.power_to_db(mel, ref=reference, top_db=80.0), sr=sr,
                                         x_axis="time", y_axis="mel", ax=axes[1, column], vmin=-80, vmax=0)
        axes[1, column].set(title=f"{name}: mel-spectrogram (dB)")
    axes[1, 1].set_ylabel("")
    fig.colorbar(image, ax=list(axes[1]), format="%+2.0f dB")
    if title:
        fig.suptitle(title)
    return fig


class AugmentationPanel:
    """Genre, track and method pickers, a parameter slider, two players and a comparison figure.

    Build with :func:`augmentation_panel`. After every change (or :meth:`update`) the attributes hold:

    ``original``, ``augmented`` : np.ndarray [shape=(n,)], float32, the excerpt at ``sr`` and its copy;
    ``params`` : dict, the arguments given to :func:`genrelib.augment.apply_method`;
    ``audio`` : (IPython.display.Audio, IPython.display.Audio), original and augmented, one common gain;
    ``figure`` : matplotlib Figure from :func:`plot_comparison`; ``image`` shows it as PNG.
    """

    def __init__(self, index: pd.DataFrame, *, config: AugmentConfig, sr: int, offset: float, duration: float,
                 seed: int):
        import ipywidgets as widgets

        self.index = index
        self.config = config
        self.sr = sr
        self.offset = offset
        self.duration = duration
        self.seed = seed
        self.original = self.augmented = None
        self.params: dict = {}
        self.audio: tuple = ()
        self.figure = None
        genres = [g for g in labels_of(index["genre"], index.attrs.get("labels")) if g in set(index["genre"])]
        self.genre = widgets.Dropdown(options=genres, value=genres[0], description="genre")
        self.track = widgets.Dropdown(options=self._tracks(genres[0]), description="track")
        self.method = widgets.Dropdown(options=list(SLIDERS), value=list(SLIDERS)[0], description="method")
        self.slider = widgets.FloatSlider(continuous_update=False, readout_format=".2f")
        self._quiet = False  # set while the panel itself moves the widgets
        self._configure_slider()
        self.players = (widgets.Output(), widgets.Output())
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%"))
        players = widgets.HBox([widgets.VBox([widgets.HTML(f"<b>{name}</b>"), out])
                                for name, out in zip(("original", "augmented"), self.players)])
        self.busy = widgets.HTML("")  # "computing ..." while a change is worked out; the controls are disabled then
        self.widget = widgets.VBox([widgets.HBox([self.genre, self.track]),
                                    widgets.HBox([self.method, self.slider, self.busy]), players, self.image])
        self.genre.observe(self._on_genre, names="value")
        self.method.observe(self._on_method, names="value")
        self.track.observe(self._on_value, names="value")
        self.slider.observe(self._on_value, names="value")
        self.update()

    # ----------------------------------------------------------------------------------- state
    def _tracks(self, genre: str) -> list[str]:
        return sorted(self.index.loc[self.index["genre"] == genre, "track_id"])

    def _configure_slider(self) -> None:
        label, field_name, step, start = SLIDERS[self.method.value]
        low, high = getattr(self.config, field_name)
        self._quiet = True
        try:
            self.slider.min, self.slider.max = -1e9, 1e9  # widen first so the new bounds apply in any order
            self.slider.min, self.slider.max, self.slider.step = low, high, step
            self.slider.value = high if start == "high" else low
            self.slider.description = label
        finally:
            self._quiet = False

    def _on_value(self, _change) -> None:
        if not self._quiet:
            self.update()

    def _on_genre(self, change) -> None:
        self._quiet = True
        try:
            self.track.options = self._tracks(change["new"])  # also selects the genre's first track
        finally:
            self._quiet = False
        self.update()

    def _on_method(self, _change) -> None:
        self._configure_slider()
        self.update()

    def _excerpt(self, track_id: str) -> np.ndarray:
        path = self.index.loc[self.index["track_id"] == track_id, "path"].iloc[0]
        return _load_excerpt(str(path), self.sr, self.offset, self.duration)

    def update(self) -> None:
        """Recompute the augmented excerpt, the players and the figure from the widgets' values.

        While it works the panel says "computing ..." and its controls are disabled; players and figure are replaced
        together at the end, so they never show different settings."""
        controls = (self.genre, self.track, self.method, self.slider)
        self.busy.value = BUSY
        for control in controls:
            control.disabled = True
        try:
            self._compute()
        finally:
            for control in controls:
                control.disabled = False
            self.busy.value = ""

    def _compute(self) -> None:
        from IPython.display import Audio

        from . import augment

        keyword = augment.METHODS[self.method.value][0]
        self.params = {keyword: float(self.slider.value)}
        if self.method.value == "white_noise":
            self.params["seed"] = self.seed
        self.original = self._excerpt(self.track.value)
        self.augmented = augment.apply_method(self.original, sr=self.sr, method=self.method.value,
                                              params=self.params)
        # One gain for both players, so loudness differences stay audible (Audio's own
        # normalisation would level them) and nothing clips.
        gain = 1.0 / max(1.0, float(np.max(np.abs(self.augmented))), float(np.max(np.abs(self.original))))
        self.audio = tuple(Audio(data=y * gain, rate=self.sr, normalize=False)
                           for y in (self.original, self.augmented))
        image = self._draw()
        for out, player in zip(self.players, self.audio):
            out.outputs = ()
            out.append_display_data(player)
        self.image.value = image

    def _draw(self) -> bytes:
        import matplotlib.pyplot as plt

        if self.figure is not None:
            plt.close(self.figure)
        settings = ", ".join(f"{k}={v:g}" for k, v in self.params.items() if k != "seed")
        self.figure = plot_comparison(self.original, self.augmented, sr=self.sr,
                                      title=f"{self.track.value}: {self.method.value} {settings}")
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        plt.close(self.figure)  # shown through self.image; closing keeps it out of the notebook's output
        return buffer.getvalue()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


@lru_cache(maxsize=16)
def _load_excerpt(path: str, sr: int, offset: float, duration: float) -> np.ndarray:
    from . import audio

    y = audio.load(path, sr=sr)
    start = min(int(offset * sr), max(y.size - int(duration * sr), 0))
    excerpt = y[start: start + int(duration * sr)]
    excerpt.flags.writeable = False  # cached and shared between calls
    return excerpt


def augmentation_panel(index: pd.DataFrame, *, config: AugmentConfig | None = None, sr: int = 16000,
                       offset: float = 10.0, duration: float = 8.0, seed: int = 0) -> AugmentationPanel:
    """Build the listening panel over the tracks of ``index``.

    Notebook: 02_augmentation.

    Parameters
    ----------
    index : pd.DataFrame
        Tracks to offer (``track_id``, ``genre``, ``path``), e.g. the training rows of a split.
    config : AugmentConfig, optional
        Slider ranges (default ``AugmentConfig()``).
    sr : int > 0 [Hz]
        Rate the excerpts are decoded at (16 000, as the cached augmentations).
    offset, duration : float > 0 [s]
        The excerpt played: ``duration`` seconds from ``offset`` (moved earlier if the clip is shorter),
        8 s from 10 s by default, so a change re-renders in about a second.
    seed : int >= 0
        Seed of the white noise.

    Returns
    -------
    AugmentationPanel
        Display it (last expression of a cell) to use it.
    """
    if not isinstance(index, pd.DataFrame) or not {"track_id", "genre", "path"} <= set(index.columns) \
            or index.empty:
        raise ParameterError("index must be a non-empty DataFrame with track_id, genre and path (data.load_gtzan)")
    config = config or AugmentConfig()
    if offset < 0:
        raise ParameterError(f"offset={offset!r} must be >= 0 seconds")
    return AugmentationPanel(index, config=config, sr=positive_int(sr, "sr"), offset=float(offset),
                             duration=positive_number(duration, "duration"), seed=int(seed))
