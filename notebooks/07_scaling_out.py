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
# # 07 · Scaling out: embedding a catalogue on Ray Data
#
# *An optional appendix: nothing in notebooks 01–06 depends on it. It is for readers who want to take the method to
# a collection a hundred times larger than GTZAN.*
#
# GTZAN holds 1000 clips; the collections people bring this method to do not. FMA-large has 106 574 clips of
# 30 s, a label's back catalogue or a streaming service's library far more. This notebook shows which step of
# the pipeline outgrows one machine (the embedding), runs that step on **Ray Data** — the same code on this
# 2-core machine as on a cluster of GPU nodes — checks that it gives exactly the single-process embeddings,
# measures its throughput here, and projects the cost for FMA-large from the measurement.
#
# Everything calls `genrelib.scale` (tested in `tests/test_scale.py`); running on a real cluster is described
# in `docs/scaling.md`.

# %%
import tempfile
import warnings
from pathlib import Path

import numpy as np
from IPython.display import Markdown, display

import genrelib
from genrelib import data, embed, plots, scale

QUICK = genrelib.config.quick_mode()  # CI sets GENRELIB_QUICK=1: a few clips, same steps
SEED = 0                              # nothing here is random; kept for the series' convention
BACKEND = "auto"                      # VGGish when its weights are converted, else the best offline backend
N_CLIPS = 4 if QUICK else 40          # clips embedded on Ray (benchmarks/ time all 100 of the mini set)
N_TIMED = 2 if QUICK else 5           # clips timed stage by stage
WORKERS = (1, 2)                      # model actors to compare
NUM_CPUS = 2                          # the local Ray cluster: this machine
CPUS_PER_NODE = 16                    # projection: CPUs of one cluster node
warnings.simplefilter("always", genrelib.GenrelibWarning)

# %% [markdown]
# ## The data
#
# The mini set (100 real GTZAN clips) unless `GENRELIB_DATA` points elsewhere (any collection `load_data` reads). In
# quick mode the first clips of a few genres stand in for it.

# %%
ROOT, SOURCE = data.resolve_root(allow_download=True, allow_synthetic=True)
index = data.load_data(ROOT)
clips = data.example_tracks(index, per_genre=-(-N_CLIPS // len(index.attrs["labels"]))).head(N_CLIPS)
BACKEND_NAME = embed.resolve_backend(BACKEND)
print(f"data: {ROOT} (found via {SOURCE}); {len(clips)} of {len(index)} clips; backend {BACKEND_NAME}")

# %% [markdown]
# ## Why the embedding step dominates
#
# Per clip the pipeline reads the file, hashes it (the cache key), decodes and resamples it to 16 kHz, and
# runs the embedding network over its patches (31 VGGish patches of 0.96 s, or 10 musicnn patches of 3 s per
# 30 s clip). Training the small CNN afterwards works on a few thousand numbers per clip and takes seconds for
# the whole set (notebook 04); augmentation runs once per *training* clip. The embedding is the step whose cost
# grows with the collection and with the model: at the 63 VGGish patches/s measured on this 2-core machine
# (`benchmarks/bench_scale.py`), FMA-large's 3.3 M patches would take about 14 hours.
# `stage_costs` times each stage on a few clips, one at a time, in this process:

# %%
costs = scale.stage_costs(clips, backend=BACKEND, n_clips=N_TIMED)
display(costs.round(3))

# %% [markdown]
# The start-up (building the model, a first clip that triggers lazy loading and compilation) is paid once per
# worker, the rest per clip. With a neural backend the model's share is the
# largest; with the weight-free `mfcc` baseline decoding dominates instead, and scaling out helps both
# equally, since both stages run in parallel.
#
# ## The pipeline as stages
#
# Ray Data streams the clips through stages that run side by side: decoding in stateless CPU tasks (as many as
# the cluster has CPUs), the model in a fixed pool of *actors* — long-lived workers that load the model once
# and then embed batch after batch, each on its own GPU where there is one — and a Parquet writer. Before
# anything runs, the driver reads the keys already in the output, and the decoding tasks drop those clips
# after hashing them: a re-run, or a resumed interrupted job, embeds only what is missing.

# %%
ax = plots.pipeline_stages(scale.pipeline_stages(costs))
plots.save_figure(ax.figure, "fig7_scale_pipeline",
                  note=f"{BACKEND_NAME}: {N_TIMED} clips of {ROOT.name} ({SOURCE}) timed stage by stage");

# %% [markdown]
# ## A run on local Ray
#
# `init_ray` starts a private Ray cluster on this machine (2 CPUs, no dashboard, usage statistics off); with
# `address=` or `$RAY_ADDRESS` the same call joins a real cluster. The output goes to a temporary folder here;
# a real job points `output` at a permanent folder or a bucket (`s3://…`, `gs://…`).

# %%
ray = scale.init_ray(num_cpus=NUM_CPUS)
OUTPUT = tempfile.mkdtemp(prefix="genrelib-catalogue-")
run = scale.embed_catalogue(clips, backend=BACKEND, output=OUTPUT, num_workers=2, progress=False)
print(f"{run.attrs['n_new']} clips embedded in {run.attrs['seconds']:.1f} s on {ray.cluster_resources()['CPU']:g} "
      f"CPUs with {run.attrs['num_workers']} model actors; {run.attrs['n_errors']} errors")

# %% [markdown]
# Each clip is one Parquet row: ids, the source file's SHA-256, the backend with its weights checksum and front
# end version, and the embedding sequence. `load_catalogue` turns the rows back into arrays, which must equal
# what the single-process `embed_dataset` computes from the same files:

# %%
# NBVAL_CHECK_OUTPUT
catalogue = scale.load_catalogue(OUTPUT).set_index("item_id")
reference = embed.embed_dataset(clips, backend=BACKEND, progress=False)
differences = [np.abs(catalogue.loc[track, "embedding"] - array).max()
               for track, array in zip(reference["track_id"], embed.load_embeddings(reference))]
print(f"every clip present: {set(catalogue.index) == set(clips['track_id'])}; "
      f"max |Ray - embed_dataset| <= 1e-5: {max(differences) <= 1e-5}")

# %% [markdown]
# Running the same job again does no decoding and no embedding: every clip's key is already in the output.

# %%
# NBVAL_CHECK_OUTPUT
again = scale.embed_catalogue(clips, backend=BACKEND, output=OUTPUT, num_workers=2, progress=False)
print(f"second run: {again.attrs['n_new']} clips embedded, all skipped: {again.attrs['n_skipped'] == len(clips)}")

# %% [markdown]
# ## Throughput here: one process vs Ray with 1 and 2 workers
#
# `measure_throughput` embeds the same clips three times from empty outputs: with `embed_dataset` (one
# process, decoding in a background thread) and on Ray with 1 and 2 model actors. Ray's start-up and the fixed
# cost of a job (actor start, model load) are reported apart. In quick mode the few clips make the fixed costs
# dominate; the full run embeds 40 clips three times (the benchmarks below time the whole mini set).

# %%
throughput = scale.measure_throughput(clips, backend=BACKEND, workers=WORKERS, num_cpus=NUM_CPUS)
display(throughput.round(2))
start = throughput.attrs["ray_start_seconds"]
speedup = throughput["patches_per_s"] / throughput["patches_per_s"].iloc[0]
print(f"{len(clips)} clips, backend {throughput.attrs['backend']}, {throughput.attrs['cluster_cpus']:g} CPUs; "
      f"throughput relative to embed_dataset: {', '.join(f'{x:.2f}x' for x in speedup)}; fixed cost of one Ray "
      f"job: {throughput.attrs['job_overhead_seconds']:.1f} s"
      + ("" if start is None else f"; Ray start-up: {start:.1f} s"))

# %% [markdown]
# On one 2-core machine Ray does not beat `embed_dataset`, which already keeps both cores busy: decoding in one
# thread, the model in the other, and TensorFlow spreading over both. A second actor only shares the same two
# cores, and Ray's fixed costs (actor start, model load) weigh on short jobs. In quick mode the few clips cannot
# pay back the fixed cost of a job at all. The next cell reads the committed end-to-end benchmark
# (`benchmarks/bench_engines.py`: `genrelib embed` of the whole mini set in fresh processes, one process against
# local Ray, the engines taking turns): how much of Ray's extra time is its fixed cost, and from how many clips
# on it stays within 10 % of one process. What Ray adds is that the *same job* runs on as many nodes as one has,
# each CPU decoding and each actor (or GPU) embedding, with restarts, retries and resumption built in.

# %%
BENCH = Path(genrelib.__file__).parents[1] / "results" / f"bench_engines_{BACKEND_NAME}.json"
print(scale.describe_engine_benchmark(BENCH))
#
# ## Projection for FMA-large
#
# A **projection, not a measurement**. Unit cost: the CPU time per patch of the fastest run above (all of this
# machine's CPUs busy; on long jobs Ray's fixed costs amortise and it approaches that rate, as the full run shows).
# Scaled to FMA-large on N nodes of 16 CPUs, assuming linear scaling (each CPU as fast as this machine's, storage
# keeping up), plus the measured start-up and fixed job cost once. On GPU nodes the model leaves the CPUs, which
# then only decode: the measured decode cost per clip gives a lower bound (the GPU's own rate is not measured
# here). FMA ships MP3s at 44.1 kHz, which cost more to decode than these 22 kHz Ogg files.

# %%
best = throughput.sort_values("patches_per_s").iloc[-1]
per_clip = costs.set_index("stage")["seconds_per_clip"]
projection = scale.project_catalogue(
    cpu_seconds_per_patch=throughput.attrs["cluster_cpus"] / best["patches_per_s"],
    decode_cpu_seconds_per_clip=per_clip["sha256"] + per_clip["decode + resample"],
    patches_per_clip=costs.attrs["patches_per_clip"], cpus_per_node=CPUS_PER_NODE,
    job_overhead_seconds=(start or 0) + throughput.attrs["job_overhead_seconds"])
display(Markdown(f"**Projection** for {scale.FMA_LARGE['name']} ({projection.attrs['n_clips']:,} clips, "
                 f"{projection.attrs['patches'] / 1e6:.1f} M patches), backend {BACKEND_NAME}, from "
                 f"{best['engine']} ({best['workers']} worker(s)) at {best['patches_per_s']:.0f} patches/s on "
                 f"{NUM_CPUS} CPUs{' — quick mode: few clips, rough' if QUICK else ''}:"))
display(projection.round(2))

# %% [markdown]
# ## What we learned
#
# * The embedding network is the step that grows with the collection; everything after it works on small
#   arrays.
# * `embed_catalogue` runs it on Ray Data as stages — decoding in CPU tasks, the model in an actor pool,
#   Parquet out — and reproduces `embed_dataset`'s numbers; a second run embeds nothing.
# * On one small machine Ray adds fixed costs and no speed: its value is the same code on many nodes. The
#   projection above says how many node-hours FMA-large needs; `docs/scaling.md` says how to get the nodes.
