"""Dataset statistics (like the paper's Table 1) and what the topics say, for prepared datasets.

    python -m dataset_preprocess.report --datasets Instrument Gift_Cards Magazine_Subscriptions

writes ``results/datasets.md`` (one row per dataset: users, items, interactions, density, mean
interactions per user and per item, mean sentences per review, topics, outlier share, topic
coherence and diversity) and, per dataset, ``results/topics/<Name>.md`` (every topic's size,
users, items, NPMI and top words) with ``results/topics/<Name>_topics.png`` (a bar chart of the
largest topics). It reads ``--data-dir`` (default ``dataset``) ``/<Name>/`` as
``python -m dataset_preprocess`` left it, and the raw review file named in
``<Name>.summary.json`` (for the sentences; read with the same options as the conversion), and
writes only into ``--out-dir`` (default ``results``). ``datasets.md`` keeps the rows of datasets
not reported on this time, so ``--datasets Gift_Cards`` updates one row. An ``--out-dir`` that
holds prepared datasets is refused (the converter's ``--out-dir`` is the report's
``--data-dir``). Each dataset's note repeats the converter's warnings (reviews that all share one
time, rounded times, a 5-core that is no longer one), computed from its ``.inter``.

Topic quality, as BERTopic users measure it:

- **Coherence: NPMI** (Bouma 2009; Lau et al. 2014) of each pair of a topic's top 10 words over
  the review sentences, each sentence one document (a word "occurs" in a sentence if the
  topic vectorizer, ``CountVectorizer(stop_words="english")``, finds it there after BERTopic's
  own cleaning, :func:`bertopic_clean`, as when the topic words were built):
  NPMI(a, b) = log(P(a, b) / (P(a) P(b))) / -log P(a, b), and -1 when a and b never share a
  sentence. A topic's coherence is the mean over its word pairs, a dataset's the mean over
  topics. Range [-1, 1]; higher = the words really occur together.
- **Diversity** (Dieng et al. 2020): the share of unique words among the top 25 words of all
  topics. 1 = no two topics share a word.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset_preprocess.atomic_io import atomic_write, atomic_write_text
from dataset_preprocess.checks import kcore_check, time_checks, warnings_for
from dataset_preprocess.readers.rawio import DEFAULT_MAX_LINE_BYTES
from dataset_preprocess.topics.files import topic_fit_id
from dataset_preprocess.topics.fit import DIVERSITY_N_WORDS

logger = logging.getLogger(__name__)

COHERENCE_N_WORDS = 10
CHART_TOPICS = 15
TABLE_TOPICS = 40


# -- topic quality -----------------------------------------------------------------------------

_BERTOPIC_DROPPED = re.compile(r"[^A-Za-z0-9 ]+")


def bertopic_clean(text: str) -> str:
    """A sentence as BERTopic hands it to the topic vectorizer (``BERTopic._preprocess_text``
    for English: newlines and tabs to spaces, every character but ASCII letters, digits and
    spaces removed), so "great..love" is the one word "greatlove" here as in the topic words."""
    return _BERTOPIC_DROPPED.sub("", text.replace("\n", " ").replace("\t", " "))


def sentence_word_sets(sentences: Sequence[str], vocabulary: Sequence[str]):
    """Binary sentence x word matrix (scipy CSR) over ``vocabulary``, tokenised as the topic
    words were built: :func:`bertopic_clean`, then the topic vectorizer (lower case, tokens of
    2+ word characters, English stop words dropped)."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(stop_words="english", binary=True,
                                 vocabulary=sorted(set(vocabulary)))
    cleaned = [bertopic_clean(s) for s in sentences]
    return vectorizer.transform(cleaned).tocsr(), vectorizer.vocabulary_


def npmi_coherence(topics_words: Sequence[Sequence[str]], sentences: Sequence[str],
                   n_words: int = COHERENCE_N_WORDS, never: list[int] | None = None
                   ) -> list[float]:
    """NPMI coherence of each topic (its first ``n_words`` words), documents = ``sentences``.

    Pairs with a word that occurs in no sentence count as -1 (they never co-occur); a topic
    with fewer than two words gets NaN. ``never``, if given, receives [pairs that never share
    a document, all pairs].
    """
    words = [list(dict.fromkeys(w))[:n_words] for w in topics_words]
    vocabulary = sorted({w for topic in words for w in topic})
    if not vocabulary or not len(sentences):
        return [math.nan] * len(words)
    matrix, index = sentence_word_sets(sentences, vocabulary)
    n_docs = matrix.shape[0]
    counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
    joint = (matrix.T @ matrix).tocsr()
    scores = []
    for topic in words:
        pairs = list(combinations(topic, 2))
        if not pairs:
            scores.append(math.nan)
            continue
        values = []
        for a, b in pairs:
            i, j = index.get(a), index.get(b)
            n_ab = float(joint[i, j]) if i is not None and j is not None else 0.0
            if never is not None:
                never[1] += 1
            if n_ab == 0:
                values.append(-1.0)
                if never is not None:
                    never[0] += 1
                continue
            p_ab = n_ab / n_docs
            p_a, p_b = counts[i] / n_docs, counts[j] / n_docs
            if p_ab == 1.0:  # both words in every sentence: perfectly associated
                values.append(1.0)
                continue
            values.append(math.log(p_ab / (p_a * p_b)) / -math.log(p_ab))
        scores.append(float(np.mean(values)))
    return scores


def topic_diversity(topics_words: Sequence[Sequence[str]],
                    n_words: int = DIVERSITY_N_WORDS) -> float:
    """Share of unique words among the top ``n_words`` words of all topics (NaN if none)."""
    tops = [list(w)[:n_words] for w in topics_words]
    total = sum(len(t) for t in tops)
    if total == 0:
        return math.nan
    return len({w for t in tops for w in t}) / total


# -- one dataset ---------------------------------------------------------------------------

@dataclass
class DatasetReport:
    """Statistics of one prepared dataset and its topics."""

    name: str
    users: int
    items: int
    interactions: int
    sentences: int | None = None
    reviews: int | None = None
    n_topics: int | None = None
    outlier_share: float | None = None
    coherence: float | None = None
    coherence_review: float | None = None
    never_together: float | None = None  # share of top-word pairs in no common sentence
    diversity: float | None = None
    diversity_n_words: int | None = None
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    topics: list[dict[str, Any]] = field(default_factory=list)
    topic_meta: dict[str, Any] = field(default_factory=dict)
    topic_fit: str | None = None  # the id SD-MTMP's cells and studies record (topics.files.topic_fit_id)

    @property
    def density(self) -> float:
        return self.interactions / (self.users * self.items)

    @property
    def per_user(self) -> float:
        return self.interactions / self.users

    @property
    def per_item(self) -> float:
        return self.interactions / self.items

    @property
    def sentences_per_review(self) -> float | None:
        if self.sentences is None or not self.reviews:
            return None
        return self.sentences / self.reviews


def interaction_counts(inter_file: Path) -> tuple[int, int, int]:
    """(users, items, interactions) of a RecBole ``.inter`` file."""
    frame = pd.read_csv(inter_file, sep="\t", dtype=str, usecols=[0, 1], keep_default_na=False)
    return (int(frame.iloc[:, 0].nunique()), int(frame.iloc[:, 1].nunique()), len(frame))


def inter_warnings(inter_file: Path, summary: dict[str, Any]) -> list[str]:
    """The converter's warnings (ties, rounded times, k-core), computed from the ``.inter`` as
    stored, with the k the summary implies (its --kcore, or 5 for an Amazon 5-core)."""
    frame = pd.read_csv(inter_file, sep="\t", keep_default_na=False,
                        dtype={"user_id:token": str, "item_id:token": str})
    k = summary.get("kcore") or (5 if summary.get("published_counts") else None)
    kcore = kcore_check(frame["user_id:token"], frame["item_id:token"], k) if k else None
    return warnings_for(time_checks(frame["user_id:token"], frame["timestamp:float"]), kcore)


def review_documents(dataset_dir: Path, name: str,
                     summary: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The review sentences the topics were built from, and the non-empty review texts: the
    raw file named in the summary, read again with the conversion's options, split by the same
    splitter."""
    from dataset_preprocess.pipeline import Source, read_source
    from dataset_preprocess.readers.own_file import OwnFileSpec
    from dataset_preprocess.registry import lookup
    from dataset_preprocess.topics.sentences import split_reviews

    raw = Path(summary["source_file"])
    if not raw.is_file():
        raise FileNotFoundError(f"{name}: the raw file {raw} named in "
                                f"{dataset_dir / (name + '.summary.json')} is gone; the "
                                "sentences (for coherence) are read from it")
    options = dict(summary.get("options") or {})
    kcore = options.pop("kcore", None)
    max_line_bytes = options.pop("max_line_bytes", DEFAULT_MAX_LINE_BYTES)
    if options.get("reader") == "own_file":
        spec = OwnFileSpec(options["format"], dict(options.get("columns") or {}),
                           options.get("time_format"))
        source = Source(name, raw, own=spec)
    else:
        source = Source(name, raw, amazon=lookup(name))
    reviews, _, _ = read_source(source, summary.get("on_bad_line", "error"), kcore,
                                max_line_bytes)
    texts = [t for t in reviews["review_text"].tolist() if t]
    return split_reviews(reviews)["sentence"].tolist(), texts


def build_report(name: str, data_dir: Path = Path("dataset"),
                 coherence: bool = True) -> DatasetReport:
    dataset_dir = data_dir / name
    inter_file = dataset_dir / f"{name}.inter"
    summary_file = dataset_dir / f"{name}.summary.json"
    if not inter_file.is_file() or not summary_file.is_file():
        raise FileNotFoundError(f"{name} is not prepared in {dataset_dir}: run "
                                f"python -m dataset_preprocess {name}")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    users, items, interactions = interaction_counts(inter_file)
    published = summary.get("published_counts")
    source = (f"Amazon {published['release']} 5-core, {Path(summary['source_file']).name}"
              if published else f"own file ({summary['source_format']}), "
                                f"{Path(summary['source_file']).name}")
    if summary.get("kcore"):
        source += f", {summary['kcore']}-core"
    report = DatasetReport(name, users, items, interactions, source=source,
                           warnings=inter_warnings(inter_file, summary))
    meta_file = dataset_dir / f"{name}.topics.json"
    if not meta_file.is_file():
        logger.warning("%s has no topics (%s missing)", name, meta_file)
        return report
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    report.topic_meta = meta
    report.topic_fit = topic_fit_id(dataset_dir, name)
    report.sentences, report.reviews = meta["n_sentences"], meta["n_reviews"]
    report.n_topics, report.outlier_share = meta["n_topics"], meta["outlier_ratio"]
    report.topics = [dict(t) for t in meta["topics"]]
    long_words = [t.get("words_25") for t in report.topics]
    if all(w is not None for w in long_words):
        report.diversity_n_words = DIVERSITY_N_WORDS
        report.diversity = topic_diversity(long_words)
    else:  # topics.json from before words_25 was kept
        report.diversity_n_words = COHERENCE_N_WORDS
        report.diversity = topic_diversity([t["words"] for t in report.topics], COHERENCE_N_WORDS)
    if coherence:
        sentences, texts = review_documents(dataset_dir, name, summary)
        if len(sentences) != meta["n_sentences"]:
            raise ValueError(f"{name}: {len(sentences)} sentences in the raw file now, but the "
                             f"topics were built from {meta['n_sentences']}; rebuild them with "
                             f"python -m dataset_preprocess {name}")
        never = [0, 0]
        scores = npmi_coherence([t["words"] for t in report.topics], sentences, never=never)
        report.never_together = never[0] / never[1] if never[1] else None
        for topic, score in zip(report.topics, scores):
            topic["npmi"] = score
        report.coherence = float(np.nanmean(scores)) if report.topics else None
        by_review = npmi_coherence([t["words"] for t in report.topics], texts)
        for topic, score in zip(report.topics, by_review):
            topic["npmi_review"] = score
        report.coherence_review = float(np.nanmean(by_review)) if report.topics else None
    return report


# -- writing ---------------------------------------------------------------------------------

def _fmt(value: float | None, digits: int = 2, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}%}" if pct else f"{value:,.{digits}f}"


TABLE_HEADER = (
    "| dataset | users | items | interactions | density | interactions / user | "
    "interactions / item | sentences / review | topics | outlier share | coherence (NPMI) "
    "| NPMI, review = document | diversity |")
NOTES_HEADING = "Sources and warnings (from the converter's checks on each `.inter`):"


def table_row(r: DatasetReport) -> str:
    return (f"| {r.name} | {r.users:,} | {r.items:,} | {r.interactions:,} | "
            f"{_fmt(r.density, 2, pct=True)} | {_fmt(r.per_user)} | {_fmt(r.per_item)} | "
            f"{_fmt(r.sentences_per_review)} | {r.n_topics if r.n_topics is not None else '-'} | "
            f"{_fmt(r.outlier_share, 1, pct=True)} | {_fmt(r.coherence, 3)} | "
            f"{_fmt(r.coherence_review, 3)} | {_fmt(r.diversity, 3)} |")


def note_line(r: DatasetReport) -> str:
    warnings = "".join(f" Warning: {w}." for w in r.warnings)
    fit = f" Topic fit `{r.topic_fit}` (the id SD-MTMP's results record)." if r.topic_fit else ""
    return f"- **{r.name}**: {r.source}.{fit}{warnings}"


def existing_entries(text: str) -> tuple[dict[str, str], dict[str, str], bool]:
    """(dataset -> table row, dataset -> note line, same table layout) of a datasets.md, so
    that a report on some datasets keeps the rows of the others. Reads the note lines of this
    layout and the one-line "Sources: A: x; B: y." of the layout before it."""
    rows: dict[str, str] = {}
    notes: dict[str, str] = {}
    lines = text.splitlines()
    for line in lines:
        if line.startswith("| ") and not line.startswith("| dataset |"):
            rows[line[2:].split(" |", 1)[0]] = line
        elif line.startswith("- **") and "**: " in line:
            notes[line[4:line.index("**: ")]] = line
        elif line.startswith("Sources: "):
            for part in line[len("Sources: "):].rstrip(".").split("; "):
                name, _, source = part.partition(": ")
                notes[name] = f"- **{name}**: {source}."
    return rows, notes, TABLE_HEADER in lines


def datasets_markdown(reports: Sequence[DatasetReport], command: str,
                      existing: str | None = None, data_dir: Path = Path("dataset")) -> str:
    """results/datasets.md: a row per dataset of ``reports``, and the rows of ``existing`` (the
    file as it was) for every other dataset, in their old order, new datasets last."""
    rows, notes, same_layout = existing_entries(existing or "")
    new = {r.name for r in reports}
    kept = [name for name in rows if name not in new]
    if kept and not same_layout:
        raise ValueError(f"the datasets.md there has another table layout, so the rows of "
                         f"{', '.join(kept)} cannot be kept; report on every dataset at once "
                         "(name them all, or leave --datasets out)")
    for r in reports:
        rows[r.name], notes[r.name] = table_row(r), note_line(r)
    lines = [
        "# Datasets",
        "",
        f"Rows made by `python -m dataset_preprocess.report` from the prepared files in "
        f"`<data dir>/<Name>/`; each run replaces the rows of the datasets it reports on and "
        f"keeps the others. Last run: `{command}` (data dir `{data_dir}`).",
        "",
        TABLE_HEADER,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows.values(),
        "",
        NOTES_HEADING,
        "",
        *[notes[name] for name in rows if name in notes],
        "",
        "- *interactions* are distinct (user, item) pairs (a repeated pair keeps its latest "
        "review); density = interactions / (users x items).",
        "- *sentences / review* counts every review, those without text too; *topics* are "
        "BERTopic clusters of the review sentences (the outlier cluster is not a topic); "
        "*outlier share* is the share of sentences in no topic.",
        f"- *coherence*: mean NPMI of each topic's top {COHERENCE_N_WORDS} words over the review "
        "sentences (a sentence is a document, as the topics were fitted, and tokenised as "
        "BERTopic tokenised them; -1 for a pair that never co-occurs); the same with each "
        f"review as a document beside it; *diversity*: unique words among the top "
        f"{DIVERSITY_N_WORDS} words of all topics. Per-topic figures: "
        "`results/topics/<Name>.md`.",
        "",
    ]
    return "\n".join(lines)


def topic_markdown(report: DatasetReport, chart: str, command: str) -> str:
    meta = report.topic_meta
    config = meta.get("config", {})
    topics = sorted(report.topics, key=lambda t: -t["size"])
    with_npmi = [t for t in report.topics if not math.isnan(t.get("npmi", math.nan))]
    lines = [
        f"# What the topics of {report.name} say",
        "",
        f"Produced by `{command}`. {report.n_topics} topics from {report.sentences:,} review "
        f"sentences ({_fmt(report.outlier_share, 1, pct=True)} outliers) of {report.reviews:,} "
        f"reviews; encoder `{meta.get('encoder', '?')}`, UMAP {config.get('umap_n_components')}-d "
        f"(n_neighbors {config.get('umap_n_neighbors')}), HDBSCAN min_cluster_size "
        f"{config.get('min_cluster_size')}, min_samples {config.get('min_samples')}, seed "
        f"{meta.get('seed')}.",
        "",
        f"- **Coherence** (mean NPMI of the top {COHERENCE_N_WORDS} words, sentences as "
        f"documents): **{_fmt(report.coherence, 3)}**; with each review as a document: "
        f"{_fmt(report.coherence_review, 3)}. {_fmt(report.never_together, 1, pct=True)} of the "
        "top-word pairs never share a sentence (NPMI -1): a topic gathers sentences that *mean* "
        "the same (embedding clusters), often with different words (thanks / thank / ty), which "
        "rarely stand in one sentence",
        f"- **Diversity** (unique share of the top {report.diversity_n_words} words of all "
        f"topics): **{_fmt(report.diversity, 3)}**",
        f"- Topic size: median {int(np.median([t['size'] for t in topics])):,} sentences, "
        f"largest {topics[0]['size']:,}, smallest {topics[-1]['size']:,}"
        if topics else "- No topics.",
        "",
        f"![largest topics]({chart})",
        "",
    ]
    if with_npmi:
        best = sorted(with_npmi, key=lambda t: -t["npmi"])[:5]
        worst = sorted(with_npmi, key=lambda t: t["npmi"])[:5]
        lines += ["Most coherent topics: " + "; ".join(
            f"#{t['topic_id']} {', '.join(t['words'][:5])} ({t['npmi']:.2f})" for t in best) + ".",
                  "",
                  "Least coherent: " + "; ".join(
            f"#{t['topic_id']} {', '.join(t['words'][:5])} ({t['npmi']:.2f})" for t in worst)
                  + ".", ""]
    header = ["| topic | sentences | users | items | NPMI | NPMI (reviews) | top words |",
              "|---|---|---|---|---|---|---|"]

    def row(t: dict[str, Any]) -> str:
        return (f"| {t['topic_id']} | {t['size']:,} | {t['n_users']:,} | {t['n_items']:,} | "
                f"{_fmt(t.get('npmi'), 3)} | {_fmt(t.get('npmi_review'), 3)} | "
                f"{', '.join(t['words'])} |")

    lines += [f"## The {min(TABLE_TOPICS, len(topics))} largest topics", "", *header,
              *[row(t) for t in topics[:TABLE_TOPICS]], ""]
    if len(topics) > TABLE_TOPICS:
        lines += [f"<details><summary>The other {len(topics) - TABLE_TOPICS} topics</summary>",
                  "", *header, *[row(t) for t in topics[TABLE_TOPICS:]], "", "</details>", ""]
    return "\n".join(lines)


def topic_chart(report: DatasetReport, path: Path, n: int = CHART_TOPICS) -> None:
    """Horizontal bars: the ``n`` largest topics, labelled by id and top words."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topics = sorted(report.topics, key=lambda t: -t["size"])[:n][::-1]
    labels = [f"#{t['topic_id']}  {', '.join(t['words'][:4])}" for t in topics]
    sizes = [t["size"] for t in topics]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(topics) + 1.4), dpi=110)
    bars = ax.barh(range(len(topics)), sizes, color="#4c72b0")
    ax.set_yticks(range(len(topics)), labels, fontsize=9)
    for bar, t in zip(bars, topics):
        note = f" {t['size']:,}  ({t['n_users']:,} users, {t['n_items']:,} items)"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, note, va="center",
                fontsize=8)
    ax.set_xlim(0, max(sizes) * 1.45 if sizes else 1)
    ax.set_xlabel("review sentences in the topic")
    ax.set_title(f"{report.name}: the {len(topics)} largest of {report.n_topics} topics\n"
                 f"{_fmt(report.outlier_share, 0, pct=True)} of the review sentences are in no "
                 "topic (outliers)", fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)


def write_reports(names: Sequence[str], data_dir: Path = Path("dataset"),
                  out_dir: Path = Path("results"), command: str = "") -> list[DatasetReport]:
    command = command or ("python -m dataset_preprocess.report --datasets " + " ".join(names))
    reports = []
    for name in names:
        logger.info("%s: statistics and topic quality", name)
        reports.append(build_report(name, data_dir))
    table = out_dir / "datasets.md"
    existing = table.read_text(encoding="utf-8") if table.is_file() else None
    text = datasets_markdown(reports, command, existing, data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(table, text)
    topics_dir = out_dir / "topics"
    for report in reports:
        if not report.topics:
            continue
        topics_dir.mkdir(parents=True, exist_ok=True)
        chart = topics_dir / f"{report.name}_topics.png"
        topic_chart(report, chart)
        atomic_write_text(topics_dir / f"{report.name}.md",
                          topic_markdown(report, chart.name, command))
    return reports


def prepared_datasets(data_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in data_dir.glob("*/*.summary.json")
                  if p.name == f"{p.parent.name}.summary.json")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataset_preprocess.report",
        description="Write results/datasets.md (statistics like the paper's Table 1) and, per "
                    "dataset, results/topics/<Name>.md + <Name>_topics.png (what the topics "
                    "say: words, sizes, NPMI coherence, diversity).")
    parser.add_argument("--datasets", nargs="+", help="prepared datasets (default: every "
                                                      "dataset in --data-dir)")
    parser.add_argument("--data-dir", type=Path,
                        help="where the prepared datasets are, the converter's --out-dir "
                             "(default: dataset)")
    parser.add_argument("--out-dir", default="results", type=Path,
                        help="where the markdown and charts go (default: results)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, datefmt="%H:%M:%S",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.data_dir is None:
        if prepared_datasets(args.out_dir):  # the converter's --out-dir given to the report?
            parser.error(f"--out-dir {args.out_dir} holds prepared datasets: the report reads "
                         "the datasets from --data-dir (default: dataset) and writes its "
                         f"markdown and charts to --out-dir; did you mean --data-dir "
                         f"{args.out_dir}? (give both to write there; nothing was written)")
        args.data_dir = Path("dataset")
    names = args.datasets or prepared_datasets(args.data_dir)
    if not names:
        parser.error(f"no prepared dataset in {args.data_dir}")
    command = "python -m dataset_preprocess.report" + (
        " --datasets " + " ".join(args.datasets) if args.datasets else "")
    try:
        reports = write_reports(names, args.data_dir, args.out_dir, command)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for r in reports:
        print(f"{r.name}: {r.users:,} users, {r.items:,} items, {r.interactions:,} interactions, "
              f"{r.n_topics} topics, coherence {_fmt(r.coherence, 3)}, diversity "
              f"{_fmt(r.diversity, 3)}")
    print(f"wrote {args.out_dir / 'datasets.md'} and {args.out_dir / 'topics'}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
