"""Write the four stand-in corpora at their published sizes, and check their vocabulary against Heaps' law.

For each stand-in (:mod:`utils.standins`): its train and test CSV files are
written (or, when ``standin.json`` shows they were written with the same seed
and scale, reused), then the train file is read once through the guide's
analyzer and its tokens, distinct words and distinct 1–2-grams are counted at
checkpoints spaced evenly on a log scale (:func:`utils.vocabulary.vocabulary_growth`).
Each point is set against the Heaps' law the stand-in was made to follow, the
one fitted on its real source text (``results/vocabulary_growth.json``).

Counting the Amazon stand-in's 3.6 million rows keeps its ~27 million distinct
1–2-grams in memory (about 3 GB) and takes about a quarter of an hour on 2 cores;
writing it takes about as long again.

Usage::

    python bench/standins.py --quick --json /tmp/standins.json   # 1 % of the rows: ~3 minutes
    python bench/standins.py --json results/standins.json         # full size: about an hour on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from utils import REPO_ROOT, standins
from utils.processes import write_json
from utils.runtime import machine_summary, package_versions
from utils.streaming import ZhangCsvRows
from utils.vocabulary import vocabulary_growth

QUICK_SCALE = 0.01
OUT_DIR = REPO_ROOT / "data" / "standins"


def checkpoints(rows: int, per_decade: int = 4, first: int = 1000) -> list[int]:
    """Row counts spaced evenly on a log scale from ``first`` (or fewer) up to ``rows``, ``rows`` included."""
    top = np.log10(rows)
    points = np.unique(np.round(10 ** np.arange(np.log10(min(first, rows)), top, 1 / per_decade)).astype(int))
    return [*points[points < rows].tolist(), rows]


def ensure_written(name: str, out_dir: Path, scale: float, seed: int) -> dict[str, Any]:
    """Write a stand-in unless ``standin.json`` says it is there with this scale and seed; return that record."""
    meta_path = out_dir / name / "standin.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        files_there = all((out_dir / name / f["path"]).is_file() for f in meta["files"].values())
        if meta["scale"] == scale and meta["seed"] == seed and files_there:
            return meta
    standins.write_standin(name, out_dir, scale=scale, seed=seed)
    return json.loads(meta_path.read_text())


def measure(name: str, out_dir: Path, scale: float, seed: int) -> dict[str, Any]:
    """Write (or reuse) one stand-in, count its train file's vocabulary growth; return a JSON-ready record."""
    spec = standins.STANDINS[name]
    meta = ensure_written(name, out_dir, scale, seed)
    words_law, ngrams_law = standins.load_laws(standins.SOURCE_CORPUS[spec.source])
    train = meta["files"]["train"]
    started = time.perf_counter()
    stream = ZhangCsvRows(out_dir / name / train["path"], spec.num_classes)
    texts = (text for chunk, _ in stream.chunks() for text in chunk)
    points = vocabulary_growth(texts, checkpoints(train["rows"]))
    records = [{**asdict(p), "words_law": round(float(words_law.predict(p.tokens))),
                "ngrams_law": round(float(ngrams_law.predict(p.tokens)))} for p in points]
    # Up to the source's size the rows are real text, which follows the law only roughly (the law is a fit);
    # past it the added terms are what keeps them on the law: that is the gap this checks.
    past = [r for r in records if r["tokens"] > train["source_tokens"]] or records[-1:]
    error = {kind: max(abs(r[kind] / r[f"{kind}_law"] - 1) for r in past) for kind in ("words", "ngrams")}
    return {"dataset": name, "scale": scale, "seed": seed, "sources": meta["sources"],
            "law_of": standins.SOURCE_CORPUS[spec.source],
            "published_text_bytes_per_row": round(spec.text_bytes_per_row, 1), "bytes_source": spec.bytes_source,
            "files": meta["files"], "count_seconds": round(time.perf_counter() - started, 1),
            "points": records, "largest_error_past_source": {k: round(v, 4) for k, v in error.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write and check the stand-ins, print one line each, optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SCALE * 100:.0f}%% of the published rows")
    parser.add_argument("--json", type=Path, help="write the results here (replaced whole)")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder of the stand-ins")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=sorted(standins.STANDINS),
                        help="these stand-ins only (with --json, the others' records are kept)")
    args = parser.parse_args(argv)
    scale = QUICK_SCALE if args.quick else 1.0
    records = []
    for name in args.only or list(standins.STANDINS):
        record = measure(name, args.out, scale, args.seed)
        records.append(record)
        last, train = record["points"][-1], record["files"]["train"]
        print(f"{name}: {train['rows']:,} rows, {train['bytes'] / 1e6:,.1f} MB, "
              f"{train['text_bytes_per_row']:.1f} text bytes per row (published "
              f"{record['published_text_bytes_per_row']}); {last['tokens']:,} tokens, {last['words']:,} words "
              f"(law {last['words_law']:,}), {last['ngrams']:,} 1-2-grams (law {last['ngrams_law']:,}); "
              f"largest gap to the law past the source: words {record['largest_error_past_source']['words']:.1%}, "
              f"1-2-grams {record['largest_error_past_source']['ngrams']:.1%}", flush=True)
    if args.json:
        if args.only and args.json.is_file():  # the other stand-ins' records stay as they were
            kept = [r for r in json.loads(args.json.read_text())["standins"] if r["dataset"] not in args.only]
            records = sorted(kept + records, key=lambda r: list(standins.STANDINS).index(r["dataset"]))
        write_json(args.json, {"machine": machine_summary(), "versions": package_versions(),
                               "quick": args.quick, "standins": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
