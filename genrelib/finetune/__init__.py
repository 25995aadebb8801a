"""Fine-tuning the embedding network end to end: log-mel patches -> backbone -> clip sequence -> the paper's CNN.

Notebook: 06_fine_tuning. CLI: ``genrelib finetune --backbone musicnn-msd --unfreeze 1``.

The paper fine-tunes VGGish for genre classification. Here every pretrained backbone of genrelib can be
fine-tuned (``musicnn-msd``, ``musicnn-mtt``, ``vgg-msd``, ``vgg-mtt``: the Keras 3 musicnn port, whose
trained weights install offline; ``vggish``: the Keras 3 VGGish with converted official weights;
``yamnet``: the Keras 3 YAMNet, its weights converted from the official TF-Lite file). The
end-to-end model is::

    log-mel patches (n_patches, *patch_shape) -> backbone, one patch at a time -> (n_patches, d)
        -> genrelib.model.build_classifier (the paper's CNN over the clip's patch sequence) -> 10 genres

Schedule (the usual transfer-learning recipe, Keras guide "Transfer learning & fine-tuning"):

1. *head only*: the backbone is frozen; the classifier head trains with the paper's Table 1 (RMSprop,
   lr 1e-3, 30 epochs, batch 32) - this stage alone is the "frozen features" CNN;
2. *fine-tuning*: the top ``unfreeze`` blocks of the backbone (:data:`BACKBONES` lists them, top first)
   train together with the head at a much smaller learning rate (default 1e-5).

One module per concern:

- :mod:`.backbones` - the registry, :func:`load_backbone`, :func:`unfreeze_top` (batch norm never trains);
- :mod:`.cut` - :func:`split_backbone` (frozen bottom, trainable top) and the clip-level models;
- :mod:`.cache` - the clips of a run, their cached log-mel patches and frozen-bottom outputs;
- :mod:`.fit` - one training stage;
- :mod:`.estimate` - the time estimate printed before a run;
- :mod:`.runs` - :func:`fine_tune`, :func:`run_protocol` and reading runs back.

Cost. With ``unfreeze=1`` on musicnn an epoch of 280 clips costs 0.2 CPU seconds instead of 112
(``benchmarks/bench_finetune.py``, 2 cores), after one pass of about 0.35 CPU seconds per clip through the frozen
layers; ``unfreeze="all"`` trains the whole backbone on the patches themselves and is meant for a GPU.

Augmented copies (``genrelib.augment``) are training items like any other: their patches are cached, and
the leakage guard (``genrelib.augment.assert_no_leakage``) checks the training table before each stage.
Each stage trains through the package's one training loop, ``Model.fit`` with callbacks
(:func:`genrelib.train.fit_model`): ``ModelCheckpoint`` keeps the best epoch, ``BackupAndRestore`` saves every
epoch, and an interrupted run resumes with the same result (the batch order and dropout's seeds of each epoch
derive from the seed, the stage and the epoch alone; :mod:`.fit`).
"""

from .backbones import BACKBONES, Backbone, block_table, load_backbone, unfreeze_top
from .cache import BOTTOM_BATCH, FINETUNE_VERSION, item_table, load_patches, patch_dataset
from .cut import build_end_to_end, clip_model, split_backbone
from .fit import FIT_VERSION, STAGES
from .runs import RUN_FILES, fine_tune, load_finetuned, load_run, run_protocol, summarize, summary_statistics

__all__ = [
    "BACKBONES",
    "Backbone",
    "load_backbone",
    "unfreeze_top",
    "block_table",
    "split_backbone",
    "build_end_to_end",
    "clip_model",
    "patch_dataset",
    "load_patches",
    "item_table",
    "fine_tune",
    "run_protocol",
    "load_finetuned",
    "load_run",
    "summarize",
    "summary_statistics",
]
