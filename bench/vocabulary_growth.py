"""How the vocabulary of the real corpora at hand grows with their size, and the Heaps' law fitted to it.

For each corpus the documents are read once, in a seeded random order (a corpus
sorted by class or date would grow its vocabulary in steps), through the
guide's analyzer, and tokens, distinct words and distinct 1–2-grams are counted
at checkpoints spaced evenly on a log scale (:func:`utils.vocabulary.vocabulary_growth`).
:func:`utils.vocabulary.fit_heaps` then fits ``V = k · N^β`` to the words and
to the 1–2-grams, on the checkpoints from ``--fit-from`` documents on (Heaps'
law describes large corpora; the first hundred documents bend the line).

The corpora are the real ones this series can read without a network:

* ``imdb``: IMDB's 50,000 labelled reviews (training and test splits together);
* ``ag_news_test``: AG News' real test file, 7,600 news items (or its committed
  300-row excerpt where the file is missing, which the results then say).

Usage::

    python bench/vocabulary_growth.py --quick --json /tmp/vocabulary.json   # 2,000 documents each: ~15 s
    python bench/vocabulary_growth.py --json results/vocabulary_growth.json  # everything: ~2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from utils import datasets, streaming
from utils.processes import write_json
from utils.readers import aclimdb_files
from utils.runtime import machine_summary, package_versions
from utils.vocabulary import VocabularyPoint, fit_heaps, vocabulary_growth

CORPORA = ("imdb", "ag_news_test")
QUICK_LIMIT = 2000
FIT_FROM = 1000


def imdb_texts(seed: int) -> tuple[Iterator[str], int, str]:
    """Return IMDB's 50,000 labelled reviews in a seeded order, their number, and where they come from."""
    folder = datasets.fetch("imdb")
    paths = [p for split in ("train", "test") for p in aclimdb_files(folder, split)[0]]
    order = np.random.default_rng(seed).permutation(len(paths))
    stream = streaming.DocumentFiles(tuple(paths[i] for i in order), np.zeros(len(paths), dtype=np.int64), 2)
    return (text for texts, _ in stream.chunks() for text in texts), len(paths), "IMDB, train and test splits"


def ag_news_texts(seed: int) -> tuple[Iterator[str], int, str]:
    """Return AG News' test rows (or the committed excerpt) in a seeded order, their number, and their source."""
    found = streaming.split_csv_or_sample("ag_news", "test", download=False)
    texts = [text for chunk, _ in streaming.ZhangCsvRows(found.path, 4).chunks() for text in chunk]
    order = np.random.default_rng(seed).permutation(len(texts))
    return (texts[i] for i in order), len(texts), found.source


def checkpoints_for(num_documents: int, per_decade: int = 8) -> list[int]:
    """Return document counts from 10 to ``num_documents``, spaced evenly on a log scale, the last one included."""
    counts = np.unique(np.round(np.logspace(1, np.log10(num_documents), 1 + int(per_decade * np.log10(
        num_documents / 10)))).astype(int))
    return sorted({*counts.tolist(), num_documents})


def measure(corpus: str, limit: int | None, seed: int, fit_from: int) -> dict[str, Any]:
    """Count one corpus's vocabulary growth and fit Heaps' law to it; return a JSON-ready record."""
    texts, available, source = imdb_texts(seed) if corpus == "imdb" else ag_news_texts(seed)
    documents = min(available, limit) if limit else available
    start = time.perf_counter()
    points = vocabulary_growth(texts, checkpoints_for(documents))
    seconds = time.perf_counter() - start
    fitted = [p for p in points if p.documents >= min(fit_from, documents // 2)]
    tokens = [p.tokens for p in fitted]
    return {
        "corpus": corpus, "source": source, "documents": documents, "seed": seed, "seconds": round(seconds, 1),
        "points": [asdict(p) for p in points], "fit_from_documents": fitted[0].documents,
        "heaps_words": asdict(fit_heaps(tokens, [p.words for p in fitted])),
        "heaps_ngrams": asdict(fit_heaps(tokens, [p.ngrams for p in fitted])),
        "extrapolation_check": extrapolation_check(points, fitted[0].documents),
    }


def extrapolation_check(points: Sequence[VocabularyPoint], fit_from: int, share: float = 0.1) -> dict[str, Any]:
    """Fit on the checkpoints up to ``share`` of the corpus, predict the whole corpus's 1–2-grams, compare.

    Both shapes are fitted on the same points: Heaps' law against the tokens, and
    a straight line against the documents (chapter 07's shape). Returns their
    predictions and relative errors for the last point.
    """
    last = points[-1]
    small = [p for p in points if fit_from <= p.documents <= share * last.documents]
    if len(small) < 2:
        small = [p for p in points if p.documents <= share * last.documents][-2:]
    law = fit_heaps([p.tokens for p in small], [p.ngrams for p in small])
    slope, intercept = np.polyfit([p.documents for p in small], [p.ngrams for p in small], 1)
    heaps, line = float(law.predict(last.tokens)), float(intercept + slope * last.documents)
    return {"fitted_up_to_documents": small[-1].documents, "predicted_documents": last.documents,
            "actual_ngrams": last.ngrams, "heaps_prediction": round(heaps), "line_prediction": round(line),
            "heaps_error": round(heaps / last.ngrams - 1, 4), "line_error": round(line / last.ngrams - 1, 4)}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: measure the corpora, print one line each, optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only the first {QUICK_LIMIT:,} documents of each")
    parser.add_argument("--json", type=Path, help="write the results here (replaced whole)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the reading order")
    parser.add_argument("--fit-from", type=int, default=FIT_FROM, help="fit on checkpoints from this many documents")
    args = parser.parse_args(argv)
    records = [measure(corpus, QUICK_LIMIT if args.quick else None, args.seed, args.fit_from) for corpus in CORPORA]
    for r in records:
        words, ngrams, last = r["heaps_words"], r["heaps_ngrams"], r["points"][-1]
        print(f"{r['corpus']}: {r['documents']:,} documents, {last['tokens']:,} tokens, {last['words']:,} words, "
              f"{last['ngrams']:,} 1-2-grams; Heaps: words {words['k']:.1f} N^{words['beta']:.3f}, "
              f"1-2-grams {ngrams['k']:.2f} N^{ngrams['beta']:.3f} ({r['seconds']} s)")
        check = r["extrapolation_check"]
        print(f"  fitted up to {check['fitted_up_to_documents']:,} documents, predicting "
              f"{check['predicted_documents']:,}: Heaps {check['heaps_error']:+.1%}, "
              f"straight line {check['line_error']:+.1%} off the actual {check['actual_ngrams']:,} 1-2-grams")
    if args.json:
        write_json(args.json, {"machine": machine_summary(), "versions": package_versions(),
                               "quick": args.quick, "corpora": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
