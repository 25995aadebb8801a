"""Listening panel for the augmentation methods (ipywidgets): hear and see original and augmented side by side.

Notebook: 02_augmentation.

:func:`augmentation_panel` returns an :class:`AugmentationPanel`; displaying it in Jupyter shows genre,
track and method pickers, a parameter slider, two audio players (``IPython.display.Audio``) and a figure
with both waveforms and mel-spectrograms (:class:`ComparisonFigure`, one figure redrawn in place). Its state
(``original``, ``augmented``, ``audio``, ``figure``) is plain Python, so it can be tested without a browser.
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

__all__ = ["SLIDERS", "AugmentationPanel", "ComparisonFigure", "UploadPanel", "augmentation_panel", "mel_power",
           "plot_comparison", "upload_panel"]

#: What the panel shows beside its slider while it recomputes.
BUSY = "<i>computing ...</i>"

#: Per method: slider label, AugmentConfig field giving its range, step, value the panel starts at.
SLIDERS = {
    "time_stretch": ("rate", "stretch_rate_range", 0.01, "high"),
    "pitch_shift": ("semitones", "pitch_steps_range", 0.1, "high"),
    "white_noise": ("SNR (dB)", "noise_snr_db_range", 0.5, "low"),
}


#: Mel bands of the panel's spectrograms; the analysis of librosa.feature.melspectrogram's defaults.
N_MELS = 64
HOP = 512
#: Points per waveform envelope: about one per pixel column of the panel's axes.
ENVELOPE_BINS = 600


def mel_power(y: np.ndarray, *, sr: int) -> np.ndarray:
    """Mel power spectrogram the panel draws (64 bands, librosa's default STFT), shape (64, frames)."""
    import librosa

    return librosa.feature.melspectrogram(y=y, sr=sr, n_mels=N_MELS, hop_length=HOP)


def _envelope(y: np.ndarray, *, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Times and values of a min/max envelope, interleaved: drawn as one line it fills like the waveform.

    Drawing every sample (or librosa's waveshow, which redraws on each zoom) costs seconds per figure; the envelope
    shows the same picture at the panel's size."""
    bins = min(ENVELOPE_BINS, y.size)
    edges = np.linspace(0, y.size, bins + 1).astype(int)
    low = np.minimum.reduceat(y, edges[:-1])
    high = np.maximum.reduceat(y, edges[:-1])
    times = np.repeat(edges[:-1] / sr, 2)
    return times, np.column_stack([low, high]).ravel()


class ComparisonFigure:
    """Waveforms (top) and mel-spectrograms in dB (bottom) of an original clip and its augmented copy, one figure
    reused for every change: :meth:`update` replaces the artists' data, so a change costs one render.

    Notebook: 02_augmentation.

    Parameters
    ----------
    sr : int > 0 [Hz]
    figsize : (float, float) [inches]
    dpi : int > 0
        With the default size the PNG is 960 x 400 pixels, shown unscaled in the panel.

    Attributes
    ----------
    figure : matplotlib Figure
        All four plots share one time axis; both spectrograms share one colour scale (dB relative to the louder
        clip's peak), so added noise shows as a raised floor.
    """

    def __init__(self, *, sr: int, figsize: tuple[float, float] = (9.6, 4.0), dpi: int = 100):
        import librosa
        from matplotlib.figure import Figure

        self.sr = positive_int(sr, "sr")
        # A Figure without pyplot: not tracked by pyplot, so never shown twice in a notebook and never leaked.
        self.figure = Figure(figsize=figsize, dpi=dpi)
        grid = self.figure.add_gridspec(2, 3, width_ratios=[1, 1, 0.03], left=0.07, right=0.93, bottom=0.12,
                                        top=0.86, wspace=0.2, hspace=0.35)
        # One column for the colour bar, beside the bottom row only, so both rows keep the same widths and the four
        # time axes line up.
        first = self.figure.add_subplot(grid[0, 0])
        self.axes = np.array([[first, self.figure.add_subplot(grid[0, 1], sharex=first, sharey=first)],
                              [self.figure.add_subplot(grid[1, 0], sharex=first),
                               self.figure.add_subplot(grid[1, 1], sharex=first)]])
        self.axes[1, 1].sharey(self.axes[1, 0])
        self.lines, self.images = [], []
        centres = librosa.mel_frequencies(N_MELS + 2, fmax=self.sr / 2)[1:-1]
        hz = [h for h in (512, 1024, 2048, 4096, 8192) if h < self.sr / 2]
        for column, (name, colour) in enumerate((("original", "tab:blue"), ("augmented", "tab:orange"))):
            top, bottom = self.axes[:, column]
            self.lines.append(top.plot([0.0], [0.0], color=colour, linewidth=0.6)[0])
            top.set_title(f"{name}: waveform", fontsize="medium")
            top.tick_params(labelbottom=False)
            self.images.append(bottom.imshow(np.full((N_MELS, 2), -80.0), origin="lower", aspect="auto",
                                             vmin=-80, vmax=0, cmap="magma", interpolation="nearest",
                                             extent=(0, 1, 0, N_MELS)))
            bottom.set(title=f"{name}: mel-spectrogram (dB)", xlabel="time (s)")
            bottom.title.set_fontsize("medium")
        self.axes[1, 0].set_yticks(np.interp(hz, centres, np.arange(N_MELS) + 0.5), [f"{h:g}" for h in hz])
        self.axes[1, 0].set_ylabel("Hz (mel scale)")
        self.axes[0, 0].set_ylabel("amplitude")
        self.axes[0, 1].tick_params(labelleft=False)
        self.axes[1, 1].tick_params(labelleft=False)
        self.figure.colorbar(self.images[1], cax=self.figure.add_subplot(grid[1, 2]), format="%+2.0f dB")
        self.title = self.figure.suptitle("")

    def update(self, original: np.ndarray, augmented: np.ndarray, *, mels: tuple | None = None,
               title: str = "") -> None:
        """Show ``original`` and ``augmented`` (same rate, any lengths); ``mels`` are their :func:`mel_power`
        spectrograms when already computed (the panel keeps the original's)."""
        import librosa

        mels = mels or tuple(mel_power(y, sr=self.sr) for y in (original, augmented))
        reference = max(float(m.max()) for m in mels) or 1.0
        peak = max(float(np.max(np.abs(original))), float(np.max(np.abs(augmented))), 1e-9)
        seconds = max(original.size, augmented.size) / self.sr
        for line, image, y, mel in zip(self.lines, self.images, (original, augmented), mels):
            line.set_data(*_envelope(y, sr=self.sr))
            image.set_data(librosa.power_to_db(mel, ref=reference, top_db=80.0))
            image.set_extent((0, y.size / self.sr, 0, N_MELS))
        self.axes[0, 0].set(xlim=(0, seconds), ylim=(-1.05 * peak, 1.05 * peak))
        self.axes[1, 0].set_ylim(0, N_MELS)
        self.title.set_text(title)

    def png(self) -> bytes:
        """The figure as PNG bytes, at its own size (no tight bounding box: that would cost a second render)."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()


def plot_comparison(original: np.ndarray, augmented: np.ndarray, *, sr: int, title: str = ""):
    """Waveforms (top) and mel-spectrograms in dB (bottom) of an original clip and its augmented copy.

    Notebook: 02_augmentation.

    Parameters
    ----------
    original, augmented : np.ndarray [shape=(n,)]
    sr : int > 0 [Hz]
    title : str
        Describes the augmentation, e.g. ``"pitch_shift n_steps=2"``.

    Returns
    -------
    fig : matplotlib Figure
        The figure of a :class:`ComparisonFigure`: one time axis for all four plots, one colour scale (dB relative
        to the louder clip's peak) for both spectrograms, so added noise shows as a raised floor.
    """
    view = ComparisonFigure(sr=sr)
    view.update(original, augmented, title=title)
    return view.figure


class AugmentationPanel:
    """Genre, track and method pickers, a parameter slider, two players and a comparison figure.

    Build with :func:`augmentation_panel`. After every change (or :meth:`update`) the attributes hold:

    ``original``, ``augmented`` : np.ndarray [shape=(n,)], float32, the excerpt at ``sr`` and its copy;
    ``params`` : dict, the arguments given to :func:`genrelib.augment.apply_method`;
    ``audio`` : (IPython.display.Audio, IPython.display.Audio), original and augmented, one common gain;
    ``figure`` : matplotlib Figure of a :class:`ComparisonFigure`; ``image`` shows it as PNG.

    A change computes only what it changes: the original excerpt, its spectrogram and its player are kept per
    track, the augmented excerpt and its spectrogram per (track, method, value); the figure is drawn into the same
    axes each time.
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
        self._view = ComparisonFigure(sr=sr)
        self.figure = self._view.figure
        self._original_player = (None, None)  # ((track, gain), Audio): re-encoded only when either changes
        genres = [g for g in labels_of(index["genre"], index.attrs.get("labels")) if g in set(index["genre"])]
        self.genre = widgets.Dropdown(options=genres, value=genres[0], description="genre")
        self.track = widgets.Dropdown(options=self._tracks(genres[0]), description="track")
        self.method = widgets.Dropdown(options=list(SLIDERS), value=list(SLIDERS)[0], description="method")
        self.slider = widgets.FloatSlider(continuous_update=False, readout_format=".2f")
        self._quiet = False  # set while the panel itself moves the widgets
        self._configure_slider()
        self.players = (widgets.Output(), widgets.Output())
        # Shown at the PNG's own size (never wider than the notebook): a scaled-up figure blurs its text.
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        players = widgets.HBox([widgets.VBox([widgets.HTML(f"<b>{name}</b>"), out])
                                for name, out in zip(("original", "augmented"), self.players)])
        self.busy = widgets.HTML("")  # "computing ..." while a change is worked out; the controls are disabled then
        self.note = widgets.HTML(self._note())
        self.widget = widgets.VBox([widgets.HBox([self.genre, self.track]),
                                    widgets.HBox([self.method, self.slider, self.busy]), players, self.image,
                                    self.note])
        self.genre.observe(self._on_genre, names="value")
        self.method.observe(self._on_method, names="value")
        self.track.observe(self._on_value, names="value")
        self.slider.observe(self._on_value, names="value")
        self.update()

    # ----------------------------------------------------------------------------------- state
    def _tracks(self, genre: str) -> list[str]:
        return sorted(self.index.loc[self.index["genre"] == genre, "track_id"])

    def _note(self) -> str:
        return (f"<small>Each track's {self.duration:g} s from {self.offset:g} s (earlier if the clip is shorter) is "
                f"augmented, so that a change answers quickly; the full clips are augmented for training. In a "
                f"reopened notebook the panel shows its saved state (JupyterLab started by make lab saves it) and "
                f"does not respond: run its cell again.</small>")

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

    def _excerpt_key(self, track_id: str) -> tuple:
        path = self.index.loc[self.index["track_id"] == track_id, "path"].iloc[0]
        return str(path), self.sr, self.offset, self.duration

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
        key = self._excerpt_key(self.track.value)
        self.original, self._original_mel = _original(*key)
        self.augmented, self._augmented_mel = _augmented(*key, self.method.value, tuple(self.params.items()))
        # One gain for both players, so loudness differences stay audible (Audio's own
        # normalisation would level them) and nothing clips.
        gain = 1.0 / max(1.0, float(np.max(np.abs(self.augmented))), float(np.max(np.abs(self.original))))
        shown = self._original_player[1]
        if self._original_player[0] != (key, gain):
            self._original_player = ((key, gain), Audio(data=self.original * gain, rate=self.sr, normalize=False))
        new_original = self._original_player[1] is not shown
        self.audio = (self._original_player[1], Audio(data=self.augmented * gain, rate=self.sr, normalize=False))
        image = self._draw()
        for out, player, changed in zip(self.players, self.audio, (new_original, True)):
            if changed:  # the original's player stays as it is while only the augmented copy changes
                out.outputs = ()
                out.append_display_data(player)
        self.image.value = image

    def _draw(self) -> bytes:
        settings = ", ".join(f"{k}={v:g}" for k, v in self.params.items() if k != "seed")
        self._view.update(self.original, self.augmented, mels=(self._original_mel, self._augmented_mel),
                          title=f"{self.track.value}: {self.method.value} {settings}")
        return self._view.png()

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


@lru_cache(maxsize=16)
def _original(path: str, sr: int, offset: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """A track's excerpt and its :func:`mel_power`, computed once per track."""
    excerpt = _load_excerpt(path, sr, offset, duration)
    mel = mel_power(excerpt, sr=sr)
    mel.flags.writeable = False
    return excerpt, mel


@lru_cache(maxsize=32)
def _augmented(path: str, sr: int, offset: float, duration: float, method: str,
               params: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The excerpt augmented by ``method`` with ``params`` (``dict.items()``) and its :func:`mel_power`, computed once
    per (track, method, value): moving the slider back to a value heard before costs nothing."""
    from . import augment

    clip = augment.apply_method(_load_excerpt(path, sr, offset, duration), sr=sr, method=method, params=dict(params))
    mel = mel_power(clip, sr=sr)
    for array in (clip, mel):
        array.flags.writeable = False
    return clip, mel


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
        8 s from 10 s by default; the panel says so. With the caches and the reused figure a change takes a few
        tenths of a second on 2 cores (``benchmarks/bench_panel.py`` measures it: ``results/bench_panel.json``).
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


class UploadPanel:
    """An upload button for any audio file; shows its genre probabilities and each patch's over time.

    Notebook: 05_evaluation. Build with :func:`upload_panel`. After an upload (or :meth:`show`) the attributes hold
    ``probabilities`` (np.ndarray [shape=(n_labels,)], ``classifier.labels`` order) and ``timeline`` (:func:`genrelib.predict.
    patch_timeline`'s frame), ``image`` the figure (:func:`genrelib.plots.prediction_figure`) as PNG, ``message`` one
    line: the predicted genre, or why the upload cannot be used (no traceback). A failed upload clears the previous
    result, so nothing on screen belongs to another file.
    """

    def __init__(self, classifier):
        import ipywidgets as widgets

        from .audio import AUDIO_EXTENSIONS

        self.classifier = classifier
        self.probabilities = self.timeline = None
        self.upload = widgets.FileUpload(accept=",".join(AUDIO_EXTENSIONS), multiple=False,
                                         description="audio file")
        self.message = widgets.HTML("Upload an audio file (any of " + ", ".join(AUDIO_EXTENSIONS) + ").")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))
        self.widget = widgets.VBox([self.upload, self.message, self.image])
        self.upload.observe(self._on_upload, names="value")

    def _on_upload(self, change) -> None:
        for item in change["new"]:  # ipywidgets 8: a tuple of dicts with name, content (memoryview), ...
            self.show(item["name"], bytes(item["content"]))

    def show(self, name: str, content: bytes) -> None:
        """Predict the upload ``content`` named ``name`` and show it; a :class:`GenrelibError` becomes one line."""
        import html

        import matplotlib.pyplot as plt

        from . import plots, predict
        from .errors import GenrelibError

        self.message.value = f"<i>computing {html.escape(name)} ...</i>"
        try:
            self.probabilities, self.timeline = predict.explain_upload(name, content, classifier=self.classifier)
        except GenrelibError as exc:
            self.probabilities = self.timeline = None
            self.image.value = b""
            self.message.value = f"<span style='color:#b00020'>cannot use this upload: {html.escape(str(exc))}</span>"
            return
        figure = plots.prediction_figure(self.probabilities, self.timeline, title=name)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90)
        plt.close(figure)  # shown through self.image only
        self.image.value = buffer.getvalue()
        best = int(np.argmax(self.probabilities))
        label = html.escape(self.classifier.labels[best])
        self.message.value = (f"<b>{html.escape(name)}</b>: <b>{label}</b> (p = {self.probabilities[best]:.2f}; "
                              f"{len(self.timeline)} patches, model {html.escape(self.classifier.run_dir.name)})")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def upload_panel(*, classifier) -> UploadPanel:
    """An upload widget that predicts the genre of any audio file with a trained run.

    Notebook: 05_evaluation.

    Parameters
    ----------
    classifier : genrelib.predict.Classifier
        From :func:`genrelib.predict.load_classifier`.

    Returns
    -------
    UploadPanel
        Display it (last expression of a cell) to use it.
    """
    from .predict import Classifier

    if not isinstance(classifier, Classifier):
        raise ParameterError(f"classifier={type(classifier).__name__} must be a genrelib.predict.Classifier "
                             f"(predict.load_classifier(RUN_DIR))")
    return UploadPanel(classifier)
