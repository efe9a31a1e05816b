"""Chapter 05's streaming n-gram pipeline in two calls, for chapters that use it rather than teach it.

:func:`tokenize_to_caches` streams each split from disk once, hashes its
n-grams into an on-disk :class:`utils.feature_cache.FeatureCache` and, for the
training split, counts document frequencies; :func:`select_features` runs the
second pass over the training cache and keeps the best columns. Training then
reads batches back with :func:`utils.disk_datasets.cached_feature_batches`.
Chapter 05 writes these loops out step by step and explains them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from utils import streaming
from utils.feature_cache import CacheWriter, FeatureCache, buckets_for
from utils.hashed_tfidf import HashedTfidf


def tokenize_to_caches(features: HashedTfidf, splits: Mapping[str, streaming.DocumentStream],
                       directory: str | os.PathLike, *, fit_split: str = "train", rows_per_bucket: int = 2000,
                       chunk_size: int = streaming.CHUNK_SIZE, seed: int = 0) -> dict[str, FeatureCache]:
    """Tokenize every split once into a cache under ``directory/<split>``; count document frequencies of ``fit_split``.

    Args:
        features: the (unfitted) hashed vectorizer.
        splits: split name -> document stream.
        directory: parent folder of the caches.
        fit_split: the split whose documents count towards idf.
        rows_per_bucket: rows per bucket file, about (bounds memory while reading).
        chunk_size: documents read from disk at a time.
        seed: seed of the assignment of rows to buckets.

    Returns:
        Split name -> its cache.
    """
    if fit_split not in splits:
        raise ValueError(f"fit_split {fit_split!r} is not one of the splits {sorted(splits)}")
    caches = {}
    for split, stream in splits.items():
        num_buckets = buckets_for(streaming.estimate_rows(stream), rows_per_bucket)
        with CacheWriter(Path(directory) / split, features.n_features, num_buckets, seed) as writer:
            for texts, labels in stream.chunks(chunk_size):
                counts = features.counts(texts)
                if split == fit_split:
                    features.count_documents(counts)
                writer.add(counts, labels)
        caches[split] = writer.cache
    return caches


def select_features(features: HashedTfidf, cache: FeatureCache) -> None:
    """Second pass: accumulate the class statistics of the training cache, bucket by bucket, and select."""
    for index in range(cache.num_buckets):
        features.accumulate_class_statistics(*cache.read_bucket(index))
    features.select()
