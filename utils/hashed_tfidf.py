"""The guide's tf-idf n-gram features with bounded memory: the hashing trick, streaming idf and selection.

:class:`utils.vectorize.NgramVectorizer` keeps a dictionary of every n-gram of
the training set (367,622 for IMDB's 20,000 training reviews after
``min_df=2``, millions for the larger datasets) and needs the whole corpus at
once to fit it. :class:`HashedTfidf` computes the same features from a stream
of chunks, with memory that does not grow with the corpus:

1. **Hashing trick.** An n-gram's column is a hash of the n-gram modulo
   ``hash_size`` (scikit-learn's ``HashingVectorizer``), so no vocabulary is
   stored. Distinct n-grams can share a column (a *collision*).
2. **Streaming idf.** One pass over the training chunks counts, per column,
   the documents it occurs in (:meth:`HashedTfidf.count_documents`); idf is
   then scikit-learn's smooth idf, ``ln((1 + n) / (1 + df)) + 1``, and columns
   in fewer than ``min_df`` documents are left out, as ``min_df`` does.
3. **Streaming feature selection.** The ANOVA F-value that ``f_classif``
   computes needs, per class and column, only the count of samples, the sum of
   values and the sum of squares; a second pass accumulates them
   (:meth:`HashedTfidf.accumulate_class_statistics`) and :meth:`HashedTfidf.select`
   keeps the ``top_k`` columns with the largest F, as ``SelectKBest`` does.

A document's vector is then built as the guide builds it: raw counts times
idf, each row scaled to unit L2 norm over all columns, then the selected
columns kept (:meth:`HashedTfidf.transform_counts`). Memory is a few arrays of
``hash_size`` numbers: ``(2 + 2 * num_classes) * 8 * hash_size`` bytes,
about 50 MB for two classes and ``2**20`` columns, whatever the corpus size.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

from utils import streaming
from utils.feature_cache import CacheWriter, FeatureCache, buckets_for
from utils.sparse import sorted_csr
from utils.vectorize import MIN_DOCUMENT_FREQUENCY, NGRAM_RANGE, TOP_K

#: Default number of hashed columns (the hash space), before selection.
HASH_SIZE = 2**20


def anova_f(class_counts: np.ndarray, sums: np.ndarray, sums_of_squares: np.ndarray) -> np.ndarray:
    """Return the one-way ANOVA F-value of every column from per-class sufficient statistics.

    This is what ``sklearn.feature_selection.f_classif`` computes from the
    whole matrix, written in terms of sums that can be accumulated chunk by chunk.

    Args:
        class_counts: ``(num_classes,)`` number of samples of each class.
        sums: ``(num_classes, n_columns)`` sum of each column's values over each class's samples.
        sums_of_squares: ``(num_classes, n_columns)`` sum of the squared values, likewise.

    Returns:
        ``(n_columns,)`` float64 F-values: ``inf`` where the classes separate the
        column perfectly (no variance within classes, some between), 0 where
        the column is constant.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    present = counts > 0
    n, k = counts.sum(), int(present.sum())  # like f_classif, only the classes that occur count
    if k < 2 or n <= k:
        raise ValueError(f"need >= 2 classes with samples and more samples than classes, got {k} classes, "
                         f"{n:.0f} samples")
    total = sums.sum(axis=0)
    total_ss = sums_of_squares.sum(axis=0) - total**2 / n
    between_ss = (sums[present] ** 2 / counts[present, None]).sum(axis=0) - total**2 / n
    within_ss = np.maximum(total_ss - between_ss, 0.0)
    between_ss = np.maximum(between_ss, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (between_ss / (k - 1)) / (within_ss / (n - k))
    f[np.isnan(f)] = 0.0
    return f


class HashedTfidf:
    """Tf-idf word n-grams with hashed columns, fitted from a stream of chunks.

    Use it in three steps: :meth:`count_documents` on every training chunk,
    :meth:`accumulate_class_statistics` on every training chunk, :meth:`select`;
    then :meth:`transform` (texts) or :meth:`transform_counts` (the output of
    :meth:`counts`, e.g. cached on disk).

    Args:
        hash_size: number of hashed columns.
        num_classes: number of classes.
        ngram_range: word n-gram sizes.
        min_df: minimum number of training documents a column must occur in.
        top_k: number of columns kept.
        binary: count an n-gram once per document however often it occurs (tf is 0 or 1), as
            ``TfidfVectorizer(binary=True)`` does; chapter 11 measured it against raw counts.
    """

    def __init__(self, num_classes: int, hash_size: int = HASH_SIZE,
                 ngram_range: tuple[int, int] = NGRAM_RANGE, min_df: int = MIN_DOCUMENT_FREQUENCY,
                 top_k: int = TOP_K, binary: bool = False) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not 1 <= top_k <= hash_size:
            raise ValueError(f"top_k must be in 1..hash_size={hash_size}, got {top_k}")
        # The same tokenization as NgramVectorizer (TfidfVectorizer's defaults), raw counts out (or 1 for
        # every n-gram present, with binary=True: scikit-learn's binary tf).
        self.hasher = HashingVectorizer(
            n_features=hash_size, ngram_range=ngram_range, alternate_sign=False, norm=None,
            strip_accents="unicode", decode_error="replace", dtype=np.float32, binary=binary,
        )
        self.hash_size = hash_size
        self.num_classes = num_classes
        self.min_df = min_df
        self.top_k = top_k
        self.num_documents = 0
        self.document_frequency = np.zeros(hash_size, dtype=np.int64)
        self.class_counts = np.zeros(num_classes, dtype=np.int64)
        self.sums = np.zeros((num_classes, hash_size), dtype=np.float64)
        self.sums_of_squares = np.zeros((num_classes, hash_size), dtype=np.float64)
        self.selected: np.ndarray | None = None
        self.scores: np.ndarray | None = None

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Return the raw n-gram counts of ``texts``: float32 CSR, ``hash_size`` columns, sorted indices."""
        return sorted_csr(self.hasher.transform(texts))

    def count_documents(self, counts: sp.csr_matrix) -> None:
        """First pass: add a chunk's counts (from :meth:`counts`) to the document frequencies."""
        self.num_documents += counts.shape[0]
        self.document_frequency += np.bincount(counts.indices, minlength=self.hash_size)

    @property
    def idf(self) -> np.ndarray:
        """Smooth idf per column, ``ln((1 + n) / (1 + df)) + 1``, float32; 0 for columns under ``min_df``.

        A zero weight drops the column, as ``min_df`` drops an n-gram from the vocabulary.
        """
        if self.num_documents == 0:
            raise RuntimeError("no documents counted yet: call count_documents first")
        idf = np.log((1 + self.num_documents) / (1 + self.document_frequency)) + 1
        idf[self.document_frequency < self.min_df] = 0.0
        return idf.astype(np.float32)

    def tfidf(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Return counts times idf, each row scaled to unit L2 norm over the columns kept by ``min_df``."""
        x = sp.csr_matrix(counts, dtype=np.float32, copy=True)
        x.data *= self.idf[x.indices]
        x.eliminate_zeros()
        return normalize(x, norm="l2", copy=False)

    def accumulate_class_statistics(self, counts: sp.csr_matrix, labels: np.ndarray) -> None:
        """Second pass: add a chunk's per-class sums and sums of squares of its tf-idf values."""
        if counts.shape[0] != len(labels):
            raise ValueError(f"{counts.shape[0]} rows but {len(labels)} labels")
        x = self.tfidf(counts)
        labels = np.asarray(labels)
        for label in range(self.num_classes):
            rows = x[labels == label]
            self.class_counts[label] += rows.shape[0]
            self.sums[label] += np.bincount(rows.indices, weights=rows.data, minlength=self.hash_size)
            self.sums_of_squares[label] += np.bincount(rows.indices, weights=np.square(rows.data, dtype=np.float64),
                                                       minlength=self.hash_size)

    def select(self) -> np.ndarray:
        """Keep the ``top_k`` columns with the largest F among those in >= ``min_df`` documents.

        Returns:
            The kept column numbers, ascending (also stored as ``selected``;
            ``scores`` holds every column's F, ``-inf`` for columns under ``min_df``).
        """
        if self.class_counts.sum() == 0:
            raise RuntimeError("no class statistics yet: call accumulate_class_statistics first")
        scores = anova_f(self.class_counts, self.sums, self.sums_of_squares)
        scores[self.document_frequency < self.min_df] = -np.inf
        eligible = int((self.document_frequency >= self.min_df).sum())
        k = min(self.top_k, eligible)
        best = np.argsort(-scores, kind="stable")[:k]
        self.scores = scores
        self.selected = np.sort(best)
        return self.selected

    @property
    def num_features(self) -> int:
        """Number of kept columns: the model's input width."""
        if self.selected is None:
            raise RuntimeError("HashedTfidf is not fitted yet: call select first")
        return len(self.selected)

    def transform_counts(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Return the tf-idf vectors of counts, selected columns only: float32 CSR, sorted indices."""
        if self.selected is None:
            raise RuntimeError("HashedTfidf is not fitted yet: call select first")
        x = sorted_csr(self.tfidf(counts))
        # x[:, self.selected] in one pass over the stored values: renumber them, drop the columns not kept
        # (the renumbering keeps each row's order, so the indices stay sorted).
        position = np.full(self.hash_size, -1, dtype=np.int32)  # hashed column -> kept column, or -1
        position[self.selected] = np.arange(len(self.selected), dtype=np.int32)
        columns = position[x.indices]
        kept = columns >= 0
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))[kept]
        indptr = np.zeros(x.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=x.shape[0]), out=indptr[1:])
        selected = sp.csr_matrix((x.data[kept], columns[kept], indptr), shape=(x.shape[0], len(self.selected)))
        selected.has_sorted_indices = True
        return selected

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Return the selected tf-idf vectors of ``texts`` (see :meth:`transform_counts`)."""
        return self.transform_counts(self.counts(texts))

    def fit_transform_parts(self, parts: Sequence[tuple[sp.csr_matrix, np.ndarray]], block_rows: int = 16_384
                            ) -> tuple[sp.csr_matrix, np.ndarray]:
        """Fit on counts held in memory in parts (:func:`gather_counts`); return the vectors and labels of all.

        The streamed steps over blocks of consecutive parts of about ``block_rows`` rows:
        :meth:`count_documents` on every block, :meth:`accumulate_class_statistics` on every block,
        :meth:`select`, then :meth:`transform_parts`. A block is stacked from its parts, one block at a time,
        so memory is the counts plus one block's copies and the result, never two copies of the whole
        matrix; and each step's per-call cost in the hash space (``hash_size`` columns) is paid per block,
        not per small part.
        """
        if not parts:
            raise ValueError("no parts to fit on")
        for counts, _ in _blocks(parts, block_rows):
            self.count_documents(counts)
        for counts, labels in _blocks(parts, block_rows):
            self.accumulate_class_statistics(counts, labels)
        self.select()
        return self.transform_parts(parts, block_rows)

    def transform_parts(self, parts: Sequence[tuple[sp.csr_matrix, np.ndarray]], block_rows: int = 16_384
                        ) -> tuple[sp.csr_matrix, np.ndarray]:
        """Return the selected tf-idf vectors of every part's counts, stacked, and their labels (a block of about
        ``block_rows`` rows at a time)."""
        blocks = [(self.transform_counts(counts), labels) for counts, labels in _blocks(parts, block_rows)]
        x = sp.vstack([block for block, _ in blocks], format="csr")
        x.has_sorted_indices = True  # each block's rows are sorted, and stacking rows keeps them so
        return x, np.concatenate([labels for _, labels in blocks])


def _blocks(parts: Sequence[tuple[sp.csr_matrix, np.ndarray]], rows: int) -> Iterator[tuple[sp.csr_matrix,
                                                                                            np.ndarray]]:
    """Yield consecutive parts stacked into blocks of at least ``rows`` rows (the last may be smaller)."""
    start = 0
    while start < len(parts):
        end, size = start, 0
        while end < len(parts) and (size < rows or end == start):
            size += parts[end][0].shape[0]
            end += 1
        chunk = parts[start:end]
        yield (sp.vstack([counts for counts, _ in chunk], format="csr") if len(chunk) > 1 else chunk[0][0],
               np.concatenate([labels for _, labels in chunk]))
        start = end


def counting_pool(workers: int) -> ProcessPoolExecutor:
    """Return a pool of ``workers`` processes for :func:`submit_counts`.

    On Linux the workers are forked, which starts them in milliseconds
    (create the pool before this process imports JAX or TensorFlow, whose
    threads do not survive a fork); elsewhere they are spawned, and each first
    imports scikit-learn (about a second).
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    method = "fork" if sys.platform == "linux" else "spawn"
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method))


def _count_part(hasher: HashingVectorizer, part: streaming.DocumentFiles | streaming.Chunk
                ) -> tuple[sp.csr_matrix, np.ndarray]:
    """In a worker: read ``part`` if it is files, hash its texts; return ``(counts, labels)``."""
    texts, labels = next(part.chunks(len(part))) if isinstance(part, streaming.DocumentFiles) else part
    return sorted_csr(hasher.transform(texts)), np.asarray(labels)


def _parts(stream: streaming.DocumentStream, part_size: int) -> Iterator[streaming.DocumentFiles | streaming.Chunk]:
    """Cut ``stream`` into parts: slices of its files (a worker reads them) or chunks of texts read here (CSV)."""
    if isinstance(stream, streaming.DocumentFiles):
        for start in range(0, len(stream), part_size):
            yield streaming.DocumentFiles(stream.paths[start:start + part_size], stream.labels[start:start + part_size],
                                          stream.num_classes)
    else:
        yield from stream.chunks(part_size)


def submit_counts(pool: Executor, features: HashedTfidf, stream: streaming.DocumentStream, *,
                  part_size: int = 1000) -> list[Future]:
    """Hand every document of ``stream`` to ``pool`` to be read and hashed, ``part_size`` at a time; return at once.

    This process only cuts the stream into parts (and reads the texts of a CSV
    stream); the workers read files and tokenize, in parallel with each other
    and with whatever this process does next. :func:`gather_counts` collects
    the result.
    """
    if part_size < 1:
        raise ValueError(f"part_size must be >= 1, got {part_size}")
    return [pool.submit(_count_part, features.hasher, part) for part in _parts(stream, part_size)]


def gather_counts(futures: Sequence[Future]) -> list[tuple[sp.csr_matrix, np.ndarray]]:
    """Wait for :func:`submit_counts`' parts; return their ``(counts, labels)``, in stream order.

    The parts are kept apart (:meth:`HashedTfidf.fit_transform_parts` and :meth:`HashedTfidf.transform_parts`
    take them so): stacking them would hold the counts twice for a while.
    """
    return [future.result() for future in futures]


def tokenize_to_caches(features: HashedTfidf, splits: Mapping[str, streaming.DocumentStream],
                       directory: str | os.PathLike, *, fit_split: str = "train", rows_per_bucket: int = 2000,
                       chunk_size: int = streaming.CHUNK_SIZE, seed: int = 0) -> dict[str, FeatureCache]:
    """First pass, for every split at once: hash each document's n-grams into a cache under ``directory/<split>``.

    The documents of ``fit_split`` also count towards the document
    frequencies (:meth:`HashedTfidf.count_documents`). Chapter 05 writes this
    loop out step by step; the later chapters call it.

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
        with CacheWriter(Path(directory) / split, features.hash_size, num_buckets, seed) as writer:
            for texts, labels in stream.chunks(chunk_size):
                counts = features.counts(texts)
                if split == fit_split:
                    features.count_documents(counts)
                writer.add(counts, labels)
        caches[split] = writer.cache
    return caches


def select_features(features: HashedTfidf, cache: FeatureCache) -> np.ndarray:
    """Second pass: accumulate the class statistics of the training cache, bucket by bucket; select and return the
    kept columns (:meth:`HashedTfidf.select`)."""
    for index in range(cache.num_buckets):
        features.accumulate_class_statistics(*cache.read_bucket(index))
    return features.select()
