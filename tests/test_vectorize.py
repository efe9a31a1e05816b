"""Tests of utils.vectorize, the guide's tf-idf n-gram vectorizer, on a small synthetic corpus."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from utils.sparse import sorted_csr
from utils.vectorize import NgramVectorizer

#: Synthetic corpus: "movie" in every text, "great film"/"awful plot" mark the classes, "zebra" and
#: "quixotic" occur in one document only.
TRAIN_TEXTS = [
    "a great film and a great movie",
    "great film, truly a great movie",
    "what a great film this movie is",
    "an awful plot in an awful movie",
    "awful plot, the movie was awful",
    "the awful plot ruined the movie zebra",
    "a great film with a great cast movie",
    "awful plot awful acting movie quixotic",
]
TRAIN_LABELS = np.array([1, 1, 1, 0, 0, 0, 1, 0])


@pytest.fixture
def fitted() -> tuple[NgramVectorizer, sp.csr_matrix]:
    """A vectorizer with the guide's settings but a small top_k, fitted on the synthetic corpus."""
    vectorizer = NgramVectorizer(top_k=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))  # f_classif on constant features
        x = vectorizer.fit_transform(TRAIN_TEXTS, TRAIN_LABELS)
    return vectorizer, x


def selected_terms(vectorizer: NgramVectorizer) -> set[str]:
    """The n-grams kept by feature selection."""
    names = vectorizer.tfidf.get_feature_names_out()
    return set(names[vectorizer.selector.get_support()])


def test_output_is_float32_csr_with_sorted_indices(fitted: tuple[NgramVectorizer, sp.csr_matrix]) -> None:
    vectorizer, x = fitted
    for matrix in (x, vectorizer.transform(["a great movie", "an awful plot"])):
        assert sp.issparse(matrix) and matrix.format == "csr"
        assert matrix.dtype == np.float32
        assert matrix.has_sorted_indices
        for a, b in zip(matrix.indptr[:-1], matrix.indptr[1:], strict=True):
            assert np.all(np.diff(matrix.indices[a:b]) > 0)
    assert x.shape == (len(TRAIN_TEXTS), vectorizer.num_features)


@pytest.mark.parametrize("top_k", [3, 6, 10_000])
def test_num_features_is_min_of_top_k_and_vocabulary(top_k: int) -> None:
    vectorizer = NgramVectorizer(top_k=top_k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))
        x = vectorizer.fit_transform(TRAIN_TEXTS, TRAIN_LABELS)
    assert vectorizer.vocabulary_size == 10  # so that top_k=3 and 6 really select
    assert vectorizer.num_features == min(top_k, vectorizer.vocabulary_size)
    assert x.shape[1] == vectorizer.num_features


def test_min_df_2_drops_ngrams_of_one_document(fitted: tuple[NgramVectorizer, sp.csr_matrix]) -> None:
    vocabulary = fitted[0].tfidf.vocabulary_
    for once in ("zebra", "quixotic", "movie zebra", "acting movie", "truly"):
        assert once not in vocabulary
    for twice in ("movie", "great", "awful", "plot", "awful plot", "great film"):
        assert twice in vocabulary


def test_min_df_1_keeps_them() -> None:
    vectorizer = NgramVectorizer(min_df=1, top_k=10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))
        vectorizer.fit_transform(TRAIN_TEXTS, TRAIN_LABELS)
    assert {"zebra", "movie zebra"} <= set(vectorizer.tfidf.vocabulary_)


def test_bigrams_in_vocabulary(fitted: tuple[NgramVectorizer, sp.csr_matrix]) -> None:
    vectorizer, _ = fitted
    bigrams = [term for term in vectorizer.tfidf.vocabulary_ if " " in term]
    assert {"great film", "awful plot", "great movie"} <= set(bigrams)
    assert not any(term.count(" ") > 1 for term in vectorizer.tfidf.vocabulary_)  # no trigrams
    # The class-marking bigrams are informative, so f_classif keeps them among the top 6; "movie", in
    # every text, carries no information and is not kept.
    assert {"great film", "awful plot"} <= selected_terms(vectorizer)
    assert "movie" not in selected_terms(vectorizer)


def test_words_only_in_test_texts_produce_no_features(fitted: tuple[NgramVectorizer, sp.csr_matrix]) -> None:
    vectorizer, _ = fitted
    x = vectorizer.transform(["zyzzyva xenolith", "xenolith zyzzyva great film", "zebra quixotic"])
    assert x.shape == (3, vectorizer.num_features)
    assert x[0].nnz == 0  # unseen words
    assert x[2].nnz == 0  # seen in one training document only: dropped by min_df, fitted on train only
    assert x[1].nnz > 0
    assert "zyzzyva" not in vectorizer.tfidf.vocabulary_  # transform did not learn anything


def test_transform_before_fit_raises() -> None:
    vectorizer = NgramVectorizer()
    with pytest.raises(RuntimeError, match="not fitted"):
        vectorizer.transform(["a great movie"])
    with pytest.raises(RuntimeError, match="not fitted"):
        _ = vectorizer.num_features


def test_fit_texts_labels_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="fit_transform: length mismatch, 8 texts but 7 labels"):
        NgramVectorizer().fit_transform(TRAIN_TEXTS, TRAIN_LABELS[:-1])
    with pytest.raises(ValueError, match="length mismatch, 7 texts but 8 labels"):
        NgramVectorizer().fit_transform(TRAIN_TEXTS[:-1], TRAIN_LABELS)


def test_fit_empty_input_raises() -> None:
    with pytest.raises(ValueError, match="empty input"):
        NgramVectorizer().fit_transform([], np.array([], dtype=np.int64))


def test_sorted_csr_sorts_unsorted_indices() -> None:
    data = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    indices = np.array([4, 0, 2, 3, 1])  # row 0: columns 4, 0, 2 (unsorted); row 1: columns 3, 1
    indptr = np.array([0, 3, 5])
    unsorted = sp.csr_matrix((data, indices, indptr), shape=(2, 5))
    assert not unsorted.has_sorted_indices
    expected = unsorted.toarray()
    result = sorted_csr(unsorted)
    assert result.format == "csr" and result.dtype == np.float32
    assert result.has_sorted_indices
    assert result.indices.tolist() == [0, 2, 4, 1, 3]
    assert result.data.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    np.testing.assert_array_equal(result.toarray(), expected.astype(np.float32))


def test_sorted_csr_leaves_its_float32_input_untouched() -> None:
    unsorted = sp.csr_matrix((np.float32([1, 2]), np.array([1, 0]), np.array([0, 2])), shape=(1, 3))
    result = sorted_csr(unsorted)
    assert result.indices.tolist() == [0, 1]
    assert unsorted.indices.tolist() == [1, 0]  # the caller's matrix is not reordered in place


def test_sorted_csr_accepts_other_formats() -> None:
    coo = sp.coo_matrix((np.array([1.0, 2.0]), (np.array([1, 0]), np.array([0, 2]))), shape=(2, 3))
    result = sorted_csr(coo)
    assert result.format == "csr" and result.dtype == np.float32 and result.has_sorted_indices
    np.testing.assert_array_equal(result.toarray(), coo.toarray())
