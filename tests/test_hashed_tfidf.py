"""Tests of utils.hashed_tfidf: streamed idf and ANOVA F against scikit-learn's whole-matrix versions.

Texts are the committed excerpt of the real AG News test file (300 rows, 4 classes); the ANOVA test also uses a
small synthetic matrix with constant and perfectly separating columns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.feature_selection import f_classif

from utils.hashed_tfidf import HashedTfidf, anova_f
from utils.readers import read_zhang_csv


def class_statistics(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class counts, sums and sums of squares of a dense matrix."""
    counts = np.bincount(y, minlength=k)
    sums = np.stack([x[y == c].sum(axis=0) for c in range(k)])
    squares = np.stack([(x[y == c] ** 2).sum(axis=0) for c in range(k)])
    return counts, sums, squares


def fitted(texts: list[str], labels: np.ndarray, chunk: int, **kwargs) -> tuple[HashedTfidf, list[sp.csr_matrix]]:
    """A HashedTfidf fitted in chunks of ``chunk`` rows, and the chunks' counts."""
    features = HashedTfidf(int(labels.max()) + 1, **kwargs)
    counts = [features.counts(texts[i:i + chunk]) for i in range(0, len(texts), chunk)]
    for c in counts:
        features.count_documents(c)
    for i, c in enumerate(counts):
        features.accumulate_class_statistics(c, labels[i * chunk:(i + 1) * chunk])
    features.select()
    return features, counts


def test_anova_f_matches_f_classif() -> None:
    rng = np.random.default_rng(0)  # synthetic
    y = rng.integers(0, 3, size=200)
    x = rng.random((200, 6)) * (rng.random((200, 6)) < 0.3)
    x[:, 1] += y  # informative
    f_expected, _ = f_classif(x, y)
    np.testing.assert_allclose(anova_f(*class_statistics(x, y, 3)), f_expected, rtol=1e-9)


def test_anova_f_constant_and_separating_columns() -> None:
    y = np.array([0, 0, 1, 1])
    x = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 2.0], [0.0, 2.0]])  # constant; separates perfectly
    f = anova_f(*class_statistics(x, y, 2))
    assert f[0] == 0.0 and np.isinf(f[1])


def test_anova_f_ignores_absent_classes() -> None:
    rng = np.random.default_rng(1)  # synthetic
    y = rng.integers(0, 2, size=50)
    x = rng.random((50, 3))
    counts, sums, squares = class_statistics(x, y, 3)  # class 2 has no samples
    np.testing.assert_allclose(anova_f(counts, sums, squares), f_classif(x, y)[0], rtol=1e-9)


def test_tfidf_equals_tfidf_vectorizer_when_nothing_collides(ag_news_sample: Path) -> None:
    texts = read_zhang_csv(ag_news_sample, 4)[0][:10]
    features = HashedTfidf(2, hash_size=2**20)
    counts = [features.counts(texts[:4]), features.counts(texts[4:])]
    for c in counts:
        features.count_documents(c)
    exact = TfidfVectorizer(ngram_range=(1, 2), min_df=2, strip_accents="unicode", dtype=np.float32)
    expected = exact.fit_transform(texts)
    # the premise: these 10 texts' 948 distinct n-grams fall in 948 distinct columns
    distinct = len(TfidfVectorizer(ngram_range=(1, 2), strip_accents="unicode").fit(texts).vocabulary_)
    assert int((features.document_frequency > 0).sum()) == distinct
    assert int((features.document_frequency >= 2).sum()) == len(exact.vocabulary_)
    hashed = sp.vstack([features.tfidf(c) for c in counts]).tocsr()
    for row in range(len(texts)):  # same values per row; only the column numbers differ
        np.testing.assert_allclose(np.sort(hashed[row].data), np.sort(expected[row].data), rtol=1e-5)


def test_streamed_tfidf_equals_whole_matrix_tfidf_with_collisions(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, 4)
    features, counts = fitted(texts, labels, chunk=64, hash_size=2**12, top_k=100)  # many collisions
    whole_counts = sp.vstack(counts).tocsr()
    df = np.bincount(whole_counts.indices, minlength=2**12)
    whole_counts = (whole_counts @ sp.diags((df >= 2).astype(np.float32))).tocsr()  # what min_df leaves out
    expected = TfidfTransformer(norm="l2", smooth_idf=True).fit_transform(whole_counts)
    streamed = sp.vstack([features.tfidf(c) for c in counts]).tocsr()
    np.testing.assert_allclose(streamed.toarray(), expected.toarray(), rtol=1e-5, atol=1e-7)


def test_streamed_selection_equals_f_classif_on_whole_matrix(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, 4)
    features, counts = fitted(texts, labels, chunk=50, hash_size=2**16, top_k=200)
    whole = sp.vstack([features.tfidf(c) for c in counts]).tocsr()
    keep = features.document_frequency >= features.min_df
    f_expected, _ = f_classif(whole[:, keep], labels)
    np.testing.assert_allclose(features.scores[keep], np.nan_to_num(f_expected), rtol=1e-4)
    assert np.all(np.isneginf(features.scores[~keep]))
    assert features.num_features == 200
    assert np.all(np.diff(features.selected) > 0)
    assert keep[features.selected].all()


def test_chunking_does_not_change_the_result(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, 4)
    a, _ = fitted(texts, labels, chunk=300, hash_size=2**16)
    b, _ = fitted(texts, labels, chunk=17, hash_size=2**16)
    np.testing.assert_array_equal(a.selected, b.selected)
    xa, xb = a.transform(texts[:20]), b.transform(texts[:20])
    np.testing.assert_allclose(xa.toarray(), xb.toarray(), rtol=1e-6)


def test_transform_output_format(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, 4)
    features, _ = fitted(texts, labels, chunk=100, hash_size=2**16, top_k=500)
    x = features.transform(texts[:10])
    assert x.shape == (10, 500) and x.dtype == np.float32 and x.has_sorted_indices
    assert np.all(np.linalg.norm(x.toarray(), axis=1) <= 1 + 1e-6)


def test_errors_before_fitting() -> None:
    features = HashedTfidf(2, hash_size=2**10, top_k=10)
    with pytest.raises(RuntimeError, match="count_documents"):
        _ = features.idf
    with pytest.raises(RuntimeError, match="accumulate_class_statistics"):
        features.select()
    with pytest.raises(RuntimeError, match="select"):
        features.transform(["a text"])
    with pytest.raises(ValueError, match="top_k"):
        HashedTfidf(2, hash_size=8, top_k=10)
    with pytest.raises(ValueError, match="num_classes"):
        HashedTfidf(1)


def test_fit_transform_parts_equals_the_streamed_steps(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, 4)
    streamed, counts = fitted(texts, labels, chunk=64, hash_size=2**14, top_k=300)
    parts = [(c, labels[i * 64:(i + 1) * 64]) for i, c in enumerate(counts)]
    in_parts = HashedTfidf(4, hash_size=2**14, top_k=300)
    x, y = in_parts.fit_transform_parts(parts)
    np.testing.assert_array_equal(in_parts.selected, streamed.selected)
    np.testing.assert_array_equal(y, labels)
    assert x.has_sorted_indices and x.shape == (300, 300)
    np.testing.assert_allclose(x.toarray(), streamed.transform_counts(sp.vstack(counts).tocsr()).toarray(), rtol=1e-6)
    with pytest.raises(ValueError, match="no parts"):
        HashedTfidf(4).fit_transform_parts([])
    with pytest.raises(ValueError, match="64 rows but 2 labels"):
        HashedTfidf(4).fit_transform_parts([(counts[0], labels[:2])])


def test_transform_counts_keeps_exactly_the_selected_columns(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, 4)
    features, counts = fitted(texts, labels, chunk=300, hash_size=2**14, top_k=250)
    expected = features.tfidf(counts[0])[:, features.selected]  # scipy's column indexing
    x = features.transform_counts(counts[0])
    assert x.shape == (300, 250) and x.has_sorted_indices
    np.testing.assert_array_equal(x.toarray(), expected.toarray())


def test_binary_counts_every_ngram_once_per_document() -> None:
    text = "good good good film, a good film"  # synthetic
    raw, binary = HashedTfidf(2).counts([text]), HashedTfidf(2, binary=True).counts([text])
    np.testing.assert_array_equal(raw.indices, binary.indices)
    assert raw.data.max() == 4 and set(binary.data.tolist()) == {1.0}


def test_counts_in_workers_equal_counts_here_in_stream_order(tmp_path: Path, ag_news_sample: Path) -> None:
    from utils import streaming
    from utils.hashed_tfidf import counting_pool, gather_counts, submit_counts

    texts, labels = read_zhang_csv(ag_news_sample, 4)
    features = HashedTfidf(4, hash_size=2**16)
    paths = []
    for i, text in enumerate(texts[:50]):  # the same texts as files, read by the workers
        (tmp_path / f"{i}.txt").write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / f"{i}.txt"))
    files = streaming.DocumentFiles(tuple(paths), labels[:50], 4)
    rows = streaming.ZhangCsvRows(ag_news_sample, 4)  # read here, hashed by the workers
    with counting_pool(2) as pool:
        from_files = gather_counts(submit_counts(pool, features, files, part_size=7))
        from_rows = gather_counts(submit_counts(pool, features, rows, part_size=64))
    assert [len(part_labels) for _, part_labels in from_files] == [7] * 7 + [1]
    for parts, n in ((from_files, 50), (from_rows, 300)):
        np.testing.assert_array_equal(np.concatenate([part_labels for _, part_labels in parts]), labels[:n])
        counts = sp.vstack([part_counts for part_counts, _ in parts]).toarray()
        np.testing.assert_array_equal(counts, features.counts(texts[:n]).toarray())
    with pytest.raises(ValueError, match="part_size"):
        submit_counts(pool, features, files, part_size=0)
    with pytest.raises(ValueError, match="workers"):
        counting_pool(0)
