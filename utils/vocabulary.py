"""How the vocabulary grows with the corpus: counted on real text, and fitted with Heaps' law.

The guide's vectorizer keeps a dictionary of every word 1–2-gram of the training
set until it selects the best 20,000, so its memory follows the number of
*distinct* n-grams, not the number of documents. That number grows more slowly
than the corpus: Heaps' law says a corpus of ``N`` tokens holds about
``V = k · N^β`` distinct terms, with ``0 < β < 1`` (H. S. Heaps, *Information
Retrieval: Computational and Theoretical Aspects*, 1978; Manning, Raghavan &
Schütze, *Introduction to Information Retrieval*, 2008, section 5.1.1, which
reports ``β = 0.49`` and ``k ≈ 44`` for the terms of Reuters-RCV1:
https://nlp.stanford.edu/IR-book/html/htmledition/heaps-law-estimating-the-number-of-terms-1.html). A straight
line through a few small corpora therefore overstates the vocabulary of a large
one, and more so the further it is extrapolated.

* :func:`vocabulary_growth` streams documents through the guide's analyzer
  (:class:`utils.vectorize.NgramVectorizer`: lower case, accents stripped, word
  1–2-grams) and counts tokens, distinct words and distinct 1–2-grams after
  every checkpoint.
* :func:`fit_heaps` fits ``V = k · N^β`` to such counts by least squares on
  their logarithms, and :class:`HeapsLaw` predicts from the fit.

Memory: the distinct terms are kept as 64-bit hashes in Python sets, so counting
costs about 100 bytes per distinct term (a few hundred MB for IMDB's 50,000
reviews); hash collisions are negligible at these sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from utils.vectorize import NgramVectorizer


@dataclass(frozen=True)
class VocabularyPoint:
    """The vocabulary of the first ``documents`` documents of a corpus.

    Attributes:
        documents: documents read so far.
        tokens: word tokens in them (the analyzer's unigrams, repeats included).
        words: distinct unigrams.
        ngrams: distinct 1–2-grams (what the guide's vectorizer holds before ``min_df`` and selection).
    """

    documents: int
    tokens: int
    words: int
    ngrams: int


def guide_analyzer() -> Callable[[str], list[str]]:
    """Return the guide's analyzer: a document -> its word 1–2-grams, as ``NgramVectorizer`` sees them."""
    return NgramVectorizer().tfidf.build_analyzer()


def vocabulary_growth(texts: Iterable[str], checkpoints: Sequence[int],
                      analyzer: Callable[[str], list[str]] | None = None) -> list[VocabularyPoint]:
    """Count tokens, distinct words and distinct 1–2-grams after each checkpoint of a stream of documents.

    Args:
        texts: the documents, in the order they are counted (read lazily, once).
        checkpoints: numbers of documents after which to record a point, increasing, >= 1.
        analyzer: document -> its terms; default :func:`guide_analyzer`. A term
            containing a space is a bigram, any other a word.

    Returns:
        One :class:`VocabularyPoint` per checkpoint reached; a checkpoint beyond
        the end of ``texts`` gives no point.

    Raises:
        ValueError: checkpoints empty, not increasing, or below 1.
    """
    if not checkpoints or checkpoints[0] < 1 or any(np.diff(np.asarray(checkpoints)) <= 0):
        raise ValueError(f"checkpoints must be increasing and >= 1, got {list(checkpoints)}")
    analyze = analyzer or guide_analyzer()
    words: set[int] = set()
    ngrams: set[int] = set()
    tokens = documents = 0
    points = []
    pending = iter(checkpoints)
    target = next(pending)
    for text in texts:
        for term in analyze(text):
            key = hash(term)
            ngrams.add(key)
            if " " not in term:
                words.add(key)
                tokens += 1
        documents += 1
        if documents == target:
            points.append(VocabularyPoint(documents, tokens, len(words), len(ngrams)))
            target = next(pending, None)
            if target is None:
                break
    return points


@dataclass(frozen=True)
class HeapsLaw:
    """``types = k · tokens^beta``, fitted to measured points.

    Attributes:
        k: the multiplier.
        beta: the exponent; below 1 for a vocabulary that grows more slowly than the corpus.
        largest_measured: the most tokens among the fitted points (predictions beyond it extrapolate).
    """

    k: float
    beta: float
    largest_measured: int

    def predict(self, tokens: float | np.ndarray) -> float | np.ndarray:
        """Return the predicted number of distinct terms in a corpus of ``tokens`` tokens."""
        return self.k * np.power(np.asarray(tokens, dtype=float), self.beta) if np.ndim(tokens) else \
            self.k * float(tokens) ** self.beta


def fit_heaps(tokens: Sequence[float], types: Sequence[float]) -> HeapsLaw:
    """Fit ``types = k · tokens^beta`` by least squares on ``log(types) = log(k) + beta · log(tokens)``.

    Raises:
        ValueError: lengths differ, fewer than two distinct token counts, or a count below 1.
    """
    if len(tokens) != len(types):
        raise ValueError(f"{len(tokens)} token counts but {len(types)} type counts")
    if len(set(tokens)) < 2:
        raise ValueError(f"need at least two distinct token counts, got {sorted(set(tokens))}")
    if min(tokens) < 1 or min(types) < 1:
        raise ValueError("token and type counts must be >= 1 to take their logarithm")
    beta, log_k = np.polyfit(np.log(np.asarray(tokens, dtype=float)), np.log(np.asarray(types, dtype=float)), 1)
    return HeapsLaw(float(np.exp(log_k)), float(beta), int(max(tokens)))
