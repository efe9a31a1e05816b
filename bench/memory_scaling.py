"""How peak memory grows with corpus size: the streaming pipeline against the in-memory one.

Each measurement runs one pipeline on the first ``n`` training documents, from
the files on disk to one epoch of training batches, in a **fresh Python
process** (:func:`utils.processes.run_fresh`), so that what one run allocated
cannot raise the next one's peak. Inside that process,
:class:`utils.memory.MemoryMonitor` samples RSS while the pipeline runs.

* :func:`streaming_pipeline` is chapter 05's: stream the documents in chunks,
  hash their n-grams once into an on-disk cache while counting document
  frequencies, accumulate the ANOVA statistics from the cache, select the top
  features, and read one epoch of batches back from the cache.
* :func:`in_memory_pipeline` is chapter 02's: read every text into a list, fit
  :class:`utils.vectorize.NgramVectorizer` on it, and cut the sparse matrix into
  one epoch of batches with :func:`utils.batching.batch_generator`.

Neither process imports TensorFlow or builds the model: the model and
TensorFlow's runtime add the same amount to both, whatever the corpus size
(the chapter's training run shows it).
"""

from __future__ import annotations

import itertools
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from utils import batching, streaming
from utils.hashed_tfidf import HashedTfidf, select_features, tokenize_to_caches
from utils.memory import MemoryMonitor
from utils.processes import run_fresh
from utils.vectorize import NgramVectorizer

APPROACHES = ("streaming", "in_memory")


def streaming_pipeline(stream: streaming.DocumentStream, workdir: Path, *, chunk_size: int = 1000,
                       rows_per_bucket: int = 2000, batch_size: int = 128, seed: int = 0) -> int:
    """Run chapter 05's streaming pipeline on ``stream``; return the number of batches of the epoch.

    The cache is written under ``workdir``. ``rows_per_bucket`` bounds the
    rows loaded at once; the number of buckets grows with the corpus instead.
    """
    features = HashedTfidf(stream.num_classes)
    cache = tokenize_to_caches(features, {"train": stream}, workdir, rows_per_bucket=rows_per_bucket,
                               chunk_size=chunk_size, seed=seed)["train"]
    select_features(features, cache)
    epoch = cache.batches(batch_size, transform=features.transform_counts, rng=np.random.default_rng(seed))
    return sum(1 for _ in epoch)


def in_memory_pipeline(stream: streaming.DocumentStream, *, batch_size: int = 128, seed: int = 0) -> int:
    """Run chapter 02's pipeline on ``stream`` (all texts in a list); return the number of batches of the epoch."""
    texts: list[str] = []
    labels: list[np.ndarray] = []
    for chunk_texts, chunk_labels in stream.chunks():
        texts.extend(chunk_texts)
        labels.append(chunk_labels)
    y = np.concatenate(labels)
    x = NgramVectorizer().fit_transform(texts, y)
    generator = batching.batch_generator(x, y, batch_size, seed=seed, sparse=True)
    steps = batching.steps_per_epoch(len(y), batch_size)
    return sum(1 for _ in itertools.islice(generator, steps))


def measure_here(approach: str, stream: streaming.DocumentStream, interval: float = 0.02) -> dict[str, float]:
    """Run one pipeline in this process; return its peak RSS, the RSS it started from, its time and batches."""
    if approach not in APPROACHES:
        raise ValueError(f"approach must be one of {APPROACHES}, got {approach!r}")
    with tempfile.TemporaryDirectory(prefix="memory-scaling-") as workdir, MemoryMonitor(interval) as monitor:
        start = time.perf_counter()
        if approach == "streaming":
            batches = streaming_pipeline(stream, Path(workdir))
        else:
            batches = in_memory_pipeline(stream)
        seconds = time.perf_counter() - start
    return {"peak_rss_bytes": monitor.peak, "start_rss_bytes": monitor.timeline.start, "seconds": seconds,
            "batches": batches}


def measure(points: list[tuple[str, streaming.DocumentStream]], interval: float = 0.02,
            workers: int = 1) -> list[dict[str, float]]:
    """Run each ``(approach, stream)`` pipeline in a fresh process of its own.

    Args:
        points: pairs of ``"streaming"`` or ``"in_memory"`` and the documents
            (e.g. ``streams.train.head(n)``).
        interval: seconds between RSS samples.
        workers: processes running at the same time (each still runs one
            measurement only, so peaks are independent; more than one only
            saves wall time when cores are free).

    Returns:
        One dict per point, in order: ``{"peak_rss_bytes", "start_rss_bytes",
        "seconds", "batches"}``, RSS of that process alone.
    """
    for approach, _ in points:
        if approach not in APPROACHES:
            raise ValueError(f"approach must be one of {APPROACHES}, got {approach!r}")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda point: run_fresh(measure_here, *point, interval), points))
