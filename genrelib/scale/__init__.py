"""Scale out: embed (and augment) catalogue-size collections on Ray Data.

Notebook: 07_scaling_out.

GTZAN is 1000 clips; a label's back catalogue or FMA-large (106 574 clips of 30 s, about 3.3 M VGGish
patches) outgrows one machine at the embedding step. This module runs the *same* per-clip work as
:func:`genrelib.embed.embed_dataset` on `Ray Data <https://docs.ray.io/en/latest/data/data.html>`_, so
the same code runs on a laptop (``ray.init(num_cpus=2)``) and unchanged on a multi-node cluster
(``address=`` / ``$RAY_ADDRESS``), with GPUs where the cluster has them::

    list clips  ->  sha256  ->  drop clips      ->  decode +   ->  embed: actor pool,   ->  Parquet: one row
    (driver)        (CPU       already in the       resample      model loaded once        per clip, local
                    tasks)     output (driver)      (CPU tasks)   per actor (+1 GPU)       or any pyarrow fs

Output: one Parquet row per clip (:data:`OUTPUT_SCHEMA`): ids, the source file's sha256, the backend, its
weights checksum and front-end version, the embedding sequence ``[n_patches][d]`` and an error message
(null when the clip was embedded). Nothing is written for a clip twice: a run first reads the keys
already in the output and skips those clips (by item id and the file's sha256), so an interrupted job
loses at most the batches in flight and a finished one is not redone. A bad file becomes an error row
with its reason; it never stops the job.

Ray is an optional dependency (``pip install 'genrelib[scale]'``); ``engine="local"`` runs the same
stages in this process without it and writes the same Parquet.

One module per concern: :mod:`~genrelib.scale.session` (the Ray session and its logging),
:mod:`~genrelib.scale.catalogue` (the clips to process), :mod:`~genrelib.scale.parquet` (schemas, output
I/O, :func:`load_catalogue`), :mod:`~genrelib.scale.stages` (the per-batch work Ray ships to workers),
:mod:`~genrelib.scale.embed_job` (:func:`embed_catalogue`), :mod:`~genrelib.scale.augment_job`
(:func:`augment_catalogue`) and :mod:`~genrelib.scale.throughput` (measuring and projecting). The
``genrelib embed --engine ray`` command lives in :mod:`genrelib.cli.embed`.
"""

from __future__ import annotations

from .augment_job import augment_catalogue
from .catalogue import catalogue_items
from .embed_job import ENGINES, embed_catalogue
from .parquet import load_catalogue
from .session import init_ray, require_ray
from .throughput import (FMA_LARGE, describe_engine_benchmark, measure_throughput, pipeline_stages, project_catalogue,
                         stage_costs)

__all__ = [
    "ENGINES",
    "OUTPUT_SCHEMA",
    "FMA_LARGE",
    "require_ray",
    "init_ray",
    "catalogue_items",
    "embed_catalogue",
    "load_catalogue",
    "augment_catalogue",
    "stage_costs",
    "pipeline_stages",
    "measure_throughput",
    "project_catalogue",
    "describe_engine_benchmark",
]


def __getattr__(name: str):
    # OUTPUT_SCHEMA needs pyarrow; built on first access so that importing this package stays light.
    if name == "OUTPUT_SCHEMA":
        from .parquet import output_schema

        return output_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
