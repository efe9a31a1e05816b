"""The guide's n-gram vectorizer: tf-idf over word 1–2-grams, top 20,000 by ANOVA F-value.

Google's guide (step 3, "n-gram vectors") tokenizes into word unigrams and
bigrams, keeps those that occur in at least two documents, weighs them with
tf-idf and keeps the 20,000 most informative by ``f_classif``. Everything is
fitted on the training split only; validation and test texts are only
transformed.

Every matrix returned here is float32 CSR with sorted indices
(:func:`utils.sparse.sorted_csr`), which Keras takes as model input.
:func:`vectorize_texts` and :func:`vectorize_splits` are the whole step in one
call, for the chapters that use it rather than teach it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.feature_selection import SelectKBest, f_classif

from utils.datasets import TextDataset
from utils.sparse import sorted_csr

#: The guide's settings.
NGRAM_RANGE = (1, 2)
MIN_DOCUMENT_FREQUENCY = 2
TOP_K = 20_000


class NgramVectorizer:
    """Tf-idf n-gram vectors with the ``top_k`` features selected by ``f_classif``.

    Args:
        ngram_range: word n-gram sizes, ``(1, 2)`` for unigrams and bigrams.
        min_df: minimum number of training documents an n-gram must occur in.
        top_k: number of features kept (fewer if the vocabulary is smaller).
    """

    def __init__(self, ngram_range: tuple[int, int] = NGRAM_RANGE,
                 min_df: int = MIN_DOCUMENT_FREQUENCY, top_k: int = TOP_K) -> None:
        self.tfidf = TfidfVectorizer(
            ngram_range=ngram_range, min_df=min_df, dtype=np.float32,
            strip_accents="unicode", decode_error="replace", analyzer="word",
        )
        self.top_k = top_k
        self.selector: SelectKBest | None = None

    @property
    def vocabulary_size(self) -> int:
        """Number of n-grams kept by ``min_df`` before feature selection."""
        return len(self.tfidf.vocabulary_)

    @property
    def num_features(self) -> int:
        """Number of features after selection (the model's input width)."""
        if self.selector is None:
            raise RuntimeError("NgramVectorizer is not fitted yet")
        return int(self.selector.get_support().sum())

    def fit_transform(self, texts: Sequence[str], labels: np.ndarray) -> sp.csr_matrix:
        """Learn the vocabulary, idf and feature selection from training data; return its vectors.

        Raises:
            ValueError: ``texts`` and ``labels`` differ in length, or ``texts`` is empty.
        """
        if len(texts) != len(labels):
            raise ValueError(f"NgramVectorizer.fit_transform: length mismatch, {len(texts)} texts but "
                             f"{len(labels)} labels")
        if len(texts) == 0:
            raise ValueError("NgramVectorizer.fit_transform: no texts to learn a vocabulary from (empty input)")
        x = self.tfidf.fit_transform(texts)
        self.selector = SelectKBest(f_classif, k=min(self.top_k, x.shape[1]))
        return sorted_csr(self.selector.fit_transform(x, labels))

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Vectorize texts with the fitted vocabulary and selection."""
        if self.selector is None:
            raise RuntimeError("NgramVectorizer is not fitted yet: call fit_transform first")
        return sorted_csr(self.selector.transform(self.tfidf.transform(texts)))


def vectorize_texts(train_texts: Sequence[str], train_labels: np.ndarray,
                    *others: Sequence[str]) -> tuple[NgramVectorizer, sp.csr_matrix, list[sp.csr_matrix], float]:
    """Fit an :class:`NgramVectorizer` on the training texts and vectorize them and every other list of texts.

    Returns:
        ``(vectorizer, x_train, [x_other, ...], seconds)``: the fitted
        vectorizer, the training matrix, one matrix per entry of ``others``,
        and the wall-clock seconds all of it took.
    """
    start = time.perf_counter()
    vectorizer = NgramVectorizer()
    x_train = vectorizer.fit_transform(train_texts, train_labels)
    x_others = [vectorizer.transform(texts) for texts in others]
    return vectorizer, x_train, x_others, time.perf_counter() - start


class VectorizedSplits(NamedTuple):
    """A dataset's three splits as tf-idf n-gram matrices (:func:`vectorize_splits`).

    Attributes:
        vectorizer: fitted on the training split only.
        train, val, test: ``(x, y)`` of each split.
        seconds: time to fit and vectorize all three.
    """

    vectorizer: NgramVectorizer
    train: tuple[sp.csr_matrix, np.ndarray]
    val: tuple[sp.csr_matrix, np.ndarray]
    test: tuple[sp.csr_matrix, np.ndarray]
    seconds: float


def vectorize_splits(data: TextDataset) -> VectorizedSplits:
    """Vectorize the train, validation and test splits of ``data``, fitting on train only."""
    vectorizer, x_train, (x_val, x_test), seconds = vectorize_texts(
        data.train_texts, data.train_labels, data.val_texts, data.test_texts)
    return VectorizedSplits(vectorizer, (x_train, data.train_labels), (x_val, data.val_labels),
                            (x_test, data.test_labels), seconds)
