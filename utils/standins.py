"""Stand-ins for the four datasets of the guide's appendix, generated from real text at their published sizes.

The guide's *Batch training* appendix names AG News, DBPedia, Yelp polarity and
Amazon polarity (Zhang, Zhao & LeCun, *Character-level Convolutional Networks
for Text Classification*, NeurIPS 2015). None can be downloaded where this series
is tested, so :func:`write_standin` writes a **stand-in** of each: a train and a
test CSV in the Zhang format (:class:`utils.streaming.ZhangCsvRows` reads them)
with the dataset's rows, classes, bytes per row and vocabulary growth, made from
real text at hand. A stand-in is generated, never real: chapter 10 uses it to
measure what depends on size, and says what it does not measure.

**What is faithful** (so the memory and time of every stage are):

* rows and classes: :data:`STANDINS`, from each dataset's ``readme.txt``
  (AG News 120,000 / 7,600, 4 classes; DBPedia 560,000 / 70,000, 14; Yelp
  polarity 560,000 / 38,000, 2; Amazon polarity 3,600,000 / 400,000, 2);
* bytes of text per row, and so words per row: from the published sizes.
  AG News: its ``train.csv`` is 29,470,338 bytes (``../shared/datasets/README.md``),
  less the 9.1 bytes of quotes, commas and class per row measured on its real
  test file. The other three: the ``num_bytes`` of the Hugging Face cards
  (``fancyzhx/dbpedia_14``: 178,428,970 for 560,000 rows; ``fancyzhx/yelp_polarity``:
  413,558,837 for 560,000; ``fancyzhx/amazon_polarity``: 1,604,364,432 for
  3,600,000), less the 8-byte class and 4-byte offset per text column that
  Arrow stores with the text. The number of words is those bytes over the
  bytes per word of the source text.
* the spread of words per row: no source we can cite publishes it, so a row's
  length is a real source document's length, scaled to the dataset's mean
  (IMDB reviews vary more than news items: coefficient of variation 0.74
  against AG News's 0.27);
* vocabulary growth: the distinct words and word 1–2-grams follow the Heaps'
  law fitted on the source text (:mod:`utils.vocabulary`,
  ``results/vocabulary_growth.json``), past the size of the source too. Text
  recycled from a finite source brings no new terms, so once the source has
  been used up, every row gets the terms the laws add for its tokens: coined
  words (``qz`` and letters, never an English word) for the new words, and
  words of the row copied to other places of it for the new 1–2-grams, each
  placed only where it makes bigrams not seen before (:class:`Novelty`).

**What is not faithful**: accuracy. The text is recycled reviews or news
items, not product reviews or Wikipedia abstracts; recycled text repeats, which
makes a stand-in easier to learn than the real set; and the published
accuracies (Zhang et al. 2015, table 4) cannot be compared with a stand-in's.
The label signal is real (a review's polarity, a news item's topic, a cluster of
sentences), so a model does learn something.

**The sources.** Yelp and Amazon polarity: IMDB reviews, class 1 negative and
2 positive as in Zhang et al.; the train CSV is made from IMDB's training
reviews, the test CSV from its test reviews, so the test rows are unseen text.
AG News: the real AG News test rows by class, seven eighths of them for the
train CSV and the rest for the test CSV. DBPedia: the sentences of IMDB's
reviews, grouped by topic into 14 clusters of equal size (k-means on their
latent semantic vectors); a row is sentences of one cluster, its class that
cluster.

Memory: the source text (up to IMDB's 33 MB of training reviews) and one row
at a time; rows are streamed to disk and each file appears whole or not at all
(:func:`utils.processes.atomic_write`).

Command: ``python -m utils.standins amazon_polarity --out data/standins``
(``--scale 0.01`` writes 1 % of the rows; ``--help`` for the rest).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rbloom import Bloom

from utils import REPO_ROOT, datasets
from utils.processes import atomic_write, write_json
from utils.readers import read_aclimdb_split, read_zhang_csv
from utils.vectorize import NgramVectorizer
from utils.vocabulary import HeapsLaw, guide_analyzer

#: A token as the guide's analyzer (scikit-learn's default ``token_pattern``) sees it.
TOKEN = re.compile(r"(?u)\b\w\w+\b")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class StandinSpec:
    """One dataset of the guide's appendix, as its stand-in reproduces it.

    Attributes:
        name: the dataset (``"amazon_polarity"``...), also the stand-in's folder.
        rows: rows of ``train.csv`` and ``test.csv``.
        num_classes: classes, balanced in both files as in the real ones.
        text_bytes_per_row: mean UTF-8 bytes of a row's text fields, from the published sizes.
        bytes_source: where ``text_bytes_per_row`` comes from.
        title_words: with two text fields, the range of words the title gets; ``None``: one field (Yelp).
        source: the real text it is made from: ``"imdb"``, ``"ag_news_test"`` or ``"imdb_clusters"``.
    """

    name: str
    rows: dict[str, int]
    num_classes: int
    text_bytes_per_row: float
    bytes_source: str
    title_words: tuple[int, int] | None
    source: str


def _arrow_text_bytes(num_bytes: int, rows: int, text_columns: int) -> float:
    """Bytes of text per row from a Hugging Face ``num_bytes``: less the int64 class and an int32 offset per column."""
    return num_bytes / rows - 8 - 4 * text_columns


#: The four datasets of the guide's appendix (rows and classes from their ``readme.txt``).
STANDINS: dict[str, StandinSpec] = {
    "ag_news": StandinSpec(
        "ag_news", {"train": 120_000, "test": 7_600}, 4, 29_470_338 / 120_000 - 9.1,
        "train.csv, 29,470,338 bytes, less 9.1 bytes of CSV syntax per row (measured on the real test.csv)",
        (4, 10), "ag_news_test"),
    "dbpedia": StandinSpec(
        "dbpedia", {"train": 560_000, "test": 70_000}, 14, _arrow_text_bytes(178_428_970, 560_000, 2),
        "Hugging Face fancyzhx/dbpedia_14, train num_bytes 178,428,970", (1, 4), "imdb_clusters"),
    "yelp_polarity": StandinSpec(
        "yelp_polarity", {"train": 560_000, "test": 38_000}, 2, _arrow_text_bytes(413_558_837, 560_000, 1),
        "Hugging Face fancyzhx/yelp_polarity, train num_bytes 413,558,837", None, "imdb"),
    "amazon_polarity": StandinSpec(
        "amazon_polarity", {"train": 3_600_000, "test": 400_000}, 2, _arrow_text_bytes(1_604_364_432, 3_600_000, 2),
        "Hugging Face fancyzhx/amazon_polarity, train num_bytes 1,604,364,432", (2, 8), "imdb"),
}

#: Which fitted Heaps' law of ``results/vocabulary_growth.json`` each source follows.
SOURCE_CORPUS = {"imdb": "imdb", "imdb_clusters": "imdb", "ag_news_test": "ag_news_test"}


@dataclass
class SourcePool:
    """Real text of one split, by class, to make stand-in rows from.

    Attributes:
        documents: ``documents[c]`` is the list of texts of class ``c`` (0-based).
        lengths: words per document of the real corpus the text comes from (its spread is kept).
        description: one line saying what the text is.
    """

    documents: list[list[str]]
    lengths: np.ndarray
    description: str
    words: int = field(init=False)
    bytes_per_word: float = field(init=False)
    tokens_per_word: float = field(init=False)

    def __post_init__(self) -> None:
        if not self.documents or any(not docs for docs in self.documents):
            raise ValueError("every class needs at least one source document")
        words = nbytes = tokens = 0
        for docs in self.documents:
            for doc in docs:
                split = doc.split()
                words += len(split)
                nbytes += len(" ".join(split).encode()) + 1
                tokens += len(TOKEN.findall(doc))
        if words == 0:
            raise ValueError("the source documents hold no words")
        self.words, self.bytes_per_word, self.tokens_per_word = words, nbytes / words, tokens / words

    @property
    def tokens(self) -> int:
        """The source's analyzer tokens: past this many, recycled text brings no new terms."""
        return round(self.words * self.tokens_per_word)


def _sentences(text: str) -> list[str]:
    """Split a review into sentences at ``.``, ``!`` or ``?`` followed by space; drop IMDB's ``<br />`` tags."""
    text = text.replace("<br />", " ")
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 3]


def balanced_assignment(distances: np.ndarray) -> np.ndarray:
    """Assign each row of an ``(items, clusters)`` distance matrix to a cluster, all clusters the same size (±1).

    Greedy: pairs are taken closest first, and a cluster takes no more once full.
    Returns the cluster of every item.
    """
    items, clusters = distances.shape
    capacity = np.full(clusters, items // clusters) + (np.arange(clusters) < items % clusters)
    assigned = np.full(items, -1)
    for pair in np.argsort(distances, axis=None, kind="stable").tolist():
        item, cluster = divmod(pair, clusters)
        if assigned[item] < 0 and capacity[cluster] > 0:
            assigned[item] = cluster
            capacity[cluster] -= 1
    return assigned


def _cluster_sentences(train: list[str], test: list[str], num_classes: int,
                       seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """Group sentences into ``num_classes`` clusters of equal size, by topic.

    K-means on the sentences' latent semantic vectors (hashed tf-idf, 100 SVD
    components, unit length), fitted on ``train``; every sentence then goes to
    the nearest centre that still has room (:func:`balanced_assignment`), since
    plain k-means puts half of all sentences into one cluster of generic ones.
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    features = make_pipeline(HashingVectorizer(n_features=2**18, alternate_sign=False, stop_words="english"),
                             TfidfTransformer(), TruncatedSVD(100, random_state=seed), Normalizer())
    rng = np.random.default_rng(seed)
    sample = [train[i] for i in rng.choice(len(train), size=min(len(train), 60_000), replace=False)]
    kmeans = MiniBatchKMeans(num_classes, random_state=seed, n_init=3, batch_size=4096)
    kmeans.fit(features.fit_transform(sample))
    grouped = []
    for sentences in (train, test):
        clusters = balanced_assignment(kmeans.transform(features.transform(sentences)))
        grouped.append([[s for s, c in zip(sentences, clusters, strict=True) if c == k] for k in range(num_classes)])
    return grouped[0], grouped[1]


def load_sources(spec: StandinSpec, data_dir: str | Path | None = None, seed: int = 0) -> dict[str, SourcePool]:
    """Return the real text a stand-in is made from, one :class:`SourcePool` per split.

    Train and test pools never share a document (or, for DBPedia, a review).

    Raises:
        utils.readers.DatasetError: the real corpus is not on disk and cannot be downloaded.
    """
    if spec.source == "ag_news_test":
        from utils.streaming import find_split_csv
        texts, labels = read_zhang_csv(find_split_csv("ag_news", "test", data_dir), spec.num_classes)
        lengths = np.array([len(t.split()) for t in texts])
        in_test = np.random.default_rng(seed).random(len(texts)) < 1 / 8
        return {split: SourcePool([[t for t, y, held in zip(texts, labels, in_test, strict=True)
                                    if y == c and held == (split == "test")] for c in range(spec.num_classes)],
                                  lengths, f"AG News test rows ({'1/8' if split == 'test' else '7/8'} of them)")
                for split in SPLITS}
    folder = datasets.fetch("imdb", data_dir)
    reviews = {split: read_aclimdb_split(folder, split) for split in SPLITS}
    lengths = np.array([len(t.split()) for t in reviews["train"][0]])
    if spec.source == "imdb":
        return {split: SourcePool([[t for t, y in zip(texts, labels, strict=True) if y == c] for c in range(2)],
                                  lengths, f"IMDB {split} reviews by polarity")
                for split, (texts, labels) in reviews.items()}
    sentences = {split: [s for t in reviews[split][0] for s in _sentences(t)] for split in SPLITS}
    train, test = _cluster_sentences(sentences["train"], sentences["test"], spec.num_classes, seed)
    return {"train": SourcePool(train, lengths, "sentences of IMDB train reviews in 14 k-means clusters"),
            "test": SourcePool(test, lengths, "sentences of IMDB test reviews, assigned to the same clusters")}


def load_laws(corpus: str, path: Path = REPO_ROOT / "results" / "vocabulary_growth.json") -> tuple[HeapsLaw, HeapsLaw]:
    """Return the Heaps' laws ``(words, 1–2-grams)`` fitted on ``corpus`` by ``bench/vocabulary_growth.py``."""
    records = {r["corpus"]: r for r in json.loads(Path(path).read_text())["corpora"]}
    if corpus not in records:
        raise KeyError(f"{path.name} has no fit for {corpus!r}; it has {sorted(records)}")
    return HeapsLaw(**records[corpus]["heaps_words"]), HeapsLaw(**records[corpus]["heaps_ngrams"])


def coined_word(index: int) -> str:
    """Return the ``index``-th coined word: ``qz`` and base-26 letters (``qza``, ``qzb``, ..., ``qzba``...)."""
    letters = ""
    while True:
        index, digit = divmod(index, 26)
        letters = chr(97 + digit) + letters
        if index == 0:
            return "qz" + letters


class _WordStream:
    """The words of a list of documents in a random order, reshuffled each time they are used up."""

    def __init__(self, documents: Sequence[str], rng: np.random.Generator) -> None:
        self.documents, self.rng = documents, rng
        self.buffer: list[str] = []
        self.starts: list[int] = []
        self.order: Iterator[int] = iter(())

    def take(self, count: int) -> tuple[list[str], list[int]]:
        """Return the next ``count`` words (documents joined end to end) and where in them a document starts."""
        while len(self.buffer) < count:
            index = next(self.order, None)
            if index is None:
                self.order = iter(self.rng.permutation(len(self.documents)).tolist())
                continue
            self.starts.append(len(self.buffer))
            self.buffer.extend(self.documents[index].split())
        taken, self.buffer = self.buffer[:count], self.buffer[count:]
        joins = [start for start in self.starts if 0 < start < count]
        self.starts = [start - count for start in self.starts if start > count]
        return taken, joins


def term_key(term: str) -> int:
    """A 128-bit key of a term, the same in every process (Python's ``hash`` of a string is not)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=16).digest(), "big", signed=True)


class Novelty:
    """New terms put into recycled text, so that its vocabulary keeps growing as Heaps' law says.

    Recycled text brings no new terms, so once the rows have used ``source_tokens``
    tokens, each row gets what the corpus lacks against the laws at its size:
    coined words for the missing words (each a new word and two new bigrams),
    and words of the row copied to another place of it for the missing 1–2-grams. The bigrams already
    seen (those of the source, and those put in before) are kept in a Bloom
    filter (``rbloom``), so a place that would repeat one is not used. A false
    positive of the filter (0.1 %) takes a new bigram for a seen one: a place is
    skipped, or a bigram of the source or of a join between two source documents
    goes uncounted, so the count of new terms is exact to about 0.1 %.

    Args:
        words_law, ngrams_law: distinct words and 1–2-grams against tokens.
        pool: the source text (its 1–2-grams are the ones seen first).
        expected_tokens: about how many tokens the rows will hold (sizes the filter).
        rng: the random numbers.

    Attributes:
        source_tokens, source_words, source_ngrams: tokens, distinct words and 1–2-grams of the source.
        tokens: tokens counted so far.
        coined, placed: words coined and words copied so far.
        ngrams_added: 1–2-grams so far beyond the source's (coined words, copies, and the bigrams where two
            source documents join, which are new even before the source is used up).
    """

    def __init__(self, words_law: HeapsLaw, ngrams_law: HeapsLaw, pool: SourcePool, expected_tokens: int,
                 rng: np.random.Generator) -> None:
        self.words_law, self.ngrams_law, self.rng = words_law, ngrams_law, rng
        self.source_tokens = pool.tokens
        self.analyze = guide_analyzer()
        self.unigrams = NgramVectorizer(ngram_range=(1, 1)).tfidf.build_analyzer()
        capacity = max(ngrams_law.predict(max(expected_tokens, pool.tokens)), 1000.0) * 1.5
        self.seen = Bloom(int(capacity), 0.001, hash_func=term_key)
        words: set[str] = set()
        bigrams = 0
        for docs in pool.documents:
            for doc in docs:
                for term in self.analyze(doc):
                    if " " not in term:
                        words.add(term)
                    elif term not in self.seen:
                        self.seen.add(term)
                        bigrams += 1
        self.source_words, self.source_ngrams = len(words), len(words) + bigrams
        self.tokens = self.coined = self.placed = self.ngrams_added = 0

    def _round(self, value: float) -> int:
        """Round ``value`` >= 0 up or down at random, so that sums keep their expected value."""
        whole = int(value)
        return whole + int(self.rng.random() < value - whole)

    def _token(self, word: str, last: bool) -> str | None:
        """The analyzer's first (or last) token of ``word``; ``None`` when it has none."""
        tokens = TOKEN.findall(word.lower()) if word.isascii() else self.unigrams(word)
        return (tokens[-1] if last else tokens[0]) if tokens else None

    def _put(self, words: list[str], position: int, token: str | None, always: bool = False) -> int:
        """Put ``token`` at ``position`` if that makes unseen bigrams (or ``always``); return how many it made."""
        if token is None:
            return 0
        before, after = self._token(words[position - 1], True), self._token(words[position + 1], False)
        bigrams = [f"{a} {b}" for a, b in ((before, token), (token, after)) if a is not None and b is not None]
        new = [b for b in bigrams if b not in self.seen]
        if not new and not always:
            return 0
        self.seen.update(new)
        words[position] = token
        return len(new)

    def add(self, words: list[str], tokens: int, joins: Sequence[int] = ()) -> None:
        """Count a row and put its share of new terms into ``words`` (in place).

        Args:
            words: the row's words, recycled source text.
            tokens: the row's tokens.
            joins: where in ``words`` one source document ends and the next starts
                (the bigram across a join may be new: it is counted).
        """
        self.tokens += tokens
        for join in joins:
            before, after = self._token(words[join - 1], True), self._token(words[join], False)
            if before is not None and after is not None and f"{before} {after}" not in self.seen:
                self.seen.add(f"{before} {after}")
                self.ngrams_added += 1
        if self.tokens <= self.source_tokens or len(words) < 3:
            return
        new_words = self._round(max(0.0, self.words_law.predict(self.tokens) - self.source_words - self.coined))
        due = self.ngrams_law.predict(self.tokens) - self.source_ngrams
        # Every other inner position, in random order, so that no two new terms are neighbours.
        for position in self.rng.permutation(np.arange(1 + int(self.rng.integers(2)), len(words) - 1, 2)).tolist():
            if new_words > 0:
                made = self._put(words, position, coined_word(self.coined), always=True)
                self.coined, new_words = self.coined + 1, new_words - 1
                self.ngrams_added += made + 1
            elif self.ngrams_added < due:
                made = self._put(words, position, self._token(words[int(self.rng.integers(len(words)))], False))
                self.placed += made > 0
                self.ngrams_added += made
            else:
                return


def scale_words(spec: StandinSpec, pool: SourcePool) -> float:
    """Mean words per row of a stand-in: the published bytes per row over the source's bytes per word."""
    return spec.text_bytes_per_row / pool.bytes_per_word


def generate_rows(spec: StandinSpec, pool: SourcePool, laws: tuple[HeapsLaw, HeapsLaw], rows: int,
                  rng: np.random.Generator, novelty: Novelty | None = None) -> Iterator[list[str]]:
    """Yield ``rows`` CSV rows ``[class index, text field(s)]`` of a stand-in, classes balanced and shuffled.

    Args:
        spec: the dataset.
        pool: the real text of this split.
        laws: Heaps' laws ``(words, 1–2-grams)`` the vocabulary follows.
        rows: how many rows.
        rng: the random numbers (seeded by the caller).
        novelty: where new terms are counted; default a fresh :class:`Novelty` (pass one to read its counts).
    """
    novelty = novelty or Novelty(*laws, pool, rows * round(scale_words(spec, pool) * pool.tokens_per_word), rng)
    streams = [_WordStream(docs, rng) for docs in pool.documents]
    labels = rng.permutation(np.arange(rows) % spec.num_classes)
    scale = scale_words(spec, pool) / pool.lengths.mean()
    for label in labels.tolist():
        count = max(3, round(float(rng.choice(pool.lengths)) * scale))
        words, joins = streams[label].take(count)
        novelty.add(words, round(count * pool.tokens_per_word), joins)
        if spec.title_words is None:
            yield [str(label + 1), " ".join(words)]
        else:
            cut = min(int(rng.integers(spec.title_words[0], spec.title_words[1] + 1)), count - 1)
            yield [str(label + 1), " ".join(words[:cut]), " ".join(words[cut:])]


@dataclass(frozen=True)
class StandinFile:
    """What :func:`write_standin` wrote for one split.

    Attributes:
        path: the CSV file.
        rows: its rows.
        bytes: its size.
        text_bytes_per_row: mean bytes of a row's text fields (the published target is the spec's).
        source_tokens: tokens of the real text it is made from (past them, terms are added).
        coined, placed: terms added to keep the vocabulary growing (see :class:`Novelty`).
        seconds: time to write it.
    """

    path: Path
    rows: int
    bytes: int
    text_bytes_per_row: float
    source_tokens: int
    coined: int
    placed: int
    seconds: float


def write_split(spec: StandinSpec, split: str, path: Path, pool: SourcePool, laws: tuple[HeapsLaw, HeapsLaw],
                rows: int, seed: int) -> StandinFile:
    """Write one stand-in CSV file whole (or leave ``path`` as it was); return what was written."""
    started = time.perf_counter()
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    novelty = Novelty(*laws, pool, rows * round(scale_words(spec, pool) * pool.tokens_per_word), rng)
    text_bytes = 0
    with atomic_write(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for row in generate_rows(spec, pool, laws, rows, rng, novelty):
            text_bytes += sum(len(f.encode()) for f in row[1:]) + len(row) - 2
            writer.writerow(row)
    return StandinFile(path, rows, path.stat().st_size, round(text_bytes / rows, 1), novelty.source_tokens,
                       novelty.coined, novelty.placed, round(time.perf_counter() - started, 1))


def write_standin(name: str, out_dir: str | Path, *, scale: float = 1.0, seed: int = 0,
                  data_dir: str | Path | None = None) -> dict[str, StandinFile]:
    """Write ``<out_dir>/<name>/{train,test}.csv`` and ``standin.json`` (what was written, and from what).

    Args:
        name: a key of :data:`STANDINS`.
        out_dir: the folder of stand-ins.
        scale: share of the published rows to write (1.0: all); at least one row per class.
        seed: the same seed writes the same bytes.
        data_dir: where the real corpora are (default :func:`utils.datasets.data_home`).

    Raises:
        KeyError: unknown ``name``. ValueError: ``scale`` not in (0, 1].
    """
    if name not in STANDINS:
        raise KeyError(f"unknown stand-in {name!r}; known: {', '.join(STANDINS)}")
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    spec = STANDINS[name]
    folder = Path(out_dir) / name
    pools = load_sources(spec, data_dir, seed)
    laws = load_laws(SOURCE_CORPUS[spec.source])
    written = {}
    for split in SPLITS:
        rows = max(spec.num_classes, round(spec.rows[split] * scale))
        written[split] = write_split(spec, split, folder / f"{split}.csv", pools[split], laws, rows, seed)
    write_json(folder / "standin.json", {
        "spec": asdict(spec), "scale": scale, "seed": seed,
        "sources": {split: pools[split].description for split in SPLITS},
        "heaps_words": asdict(laws[0]), "heaps_ngrams": asdict(laws[1]),
        "files": {split: {**asdict(f), "path": f"{split}.csv"} for split, f in written.items()}})
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write the stand-ins named on it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", choices=sorted(STANDINS))
    parser.add_argument("--out", default=str(REPO_ROOT / "data" / "standins"), help="folder of the stand-ins")
    parser.add_argument("--scale", type=float, default=1.0, help="share of the published rows, in (0, 1]")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in args.names:
        for split, f in write_standin(name, args.out, scale=args.scale, seed=args.seed).items():
            print(f"{name} {split}: {f.rows:,} rows, {f.bytes / 1e6:,.1f} MB, "
                  f"{f.text_bytes_per_row:.1f} text bytes per row (published {STANDINS[name].text_bytes_per_row:.1f}), "
                  f"{f.coined:,} coined words, {f.placed:,} placed words, {f.seconds} s")


if __name__ == "__main__":
    main()
