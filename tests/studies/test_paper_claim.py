"""The paper-claim study: the sweeps and their test-chosen combination, SD-MTMP's rank
and paired gap after each step, what each step adds, and the real runner on the tiny dataset."""

import numpy as np
import pytest

from recbole_sdmtmp.experiments import cells as store, statistics
from studies import catalogue, paper_claim, tables
from studies.rows import step_summary
from tests.study_data import FIT, on_fit
from tests.studies.test_compare import fake_record
from tests.tiny_data import write_tiny_dataset

DEFAULTS = {"embedding_size": 256, "n_layers": 2, "beta": 0.4, "gamma2": 0.4}


def row(label, positions, seeds=(1, 2)):
    return statistics.RowStats(label, [fake_record(label, seed, positions) for seed in seeds])


def test_the_sweeps_are_the_papers_18_points_one_knob_from_the_defaults():
    points = paper_claim.sweep_configurations(DEFAULTS)
    assert len(points) == 4 + 3 + 6 + 5 == 18
    assert all(len(overrides) <= 1 for *_, overrides in points)
    at_default = [(param, value) for param, value, label, overrides in points if not overrides]
    assert at_default == [("embedding_size", 256), ("n_layers", 2), ("beta", 0.4), ("gamma2", 0.4)]
    assert {label for param, value, label, overrides in points if not overrides} == {catalogue.OURS}
    assert ("beta", 0.2, "SD-MTMP beta=0.2", {"beta": 0.2}) in points
    assert len({label for _, _, label, _ in points}) == 18 - 3  # the defaults are one row


def test_each_sweep_keeps_its_best_test_value_the_default_or_the_smaller_one_on_a_tie():
    points = paper_claim.sweep_configurations(DEFAULTS)
    hit, miss = [0, 0, 0], [30, 30, 30]
    best = {"SD-MTMP embedding_size=512", "SD-MTMP n_layers=3", "SD-MTMP beta=0.1", "SD-MTMP beta=0.2"}
    rows = {label: row(label, hit if label in best else miss) for _, _, label, _ in points}
    chosen = paper_claim.best_of_each_sweep(points, rows)
    # beta 0.1 and 0.2 tie: the smaller wins; every gamma2 ties with the default, which stays
    assert chosen == {"embedding_size": 512, "n_layers": 3, "beta": 0.1, "gamma2": 0.4}


def test_rank_and_gap_to_the_best_other_row_by_hand():
    """NDCG@10 by hand: ours hits at position 0 for 2 of 4 users (1, 1, 0, 0) = 0.5; A hits all four
    at position 1 (1/log2(3) = 0.6309); B never hits. Ours ranks 2 of 3, 0.1309 below A."""
    ours = row("SD-MTMP", [0, 0, 30, 30])
    a, b = row("A", [1, 1, 1, 1]), row("B", [30, 30, 30, 30])
    summary = step_summary(3, ours, [b, a])
    assert (summary["rank"], summary["of"], summary["best"]) == (2, 3, "A")
    assert summary["ours_ndcg"] == pytest.approx(0.5)
    assert summary["best_ndcg"] == pytest.approx(1 / np.log2(3))
    assert summary["ndcg_difference"] == pytest.approx(0.5 - 1 / np.log2(3))
    assert summary["hr_difference"] == pytest.approx(-0.5)
    assert statistics.rank_of(a, [ours, b]) == 1 and statistics.rank_of(b, [ours, a]) == 3


def fake_runner(calls):
    """run_cells replaced by a table of hits: SD-MTMP at beta 0.2 is best of its sweeps, the leaky
    steps lift SD-MTMP above every baseline, and SASRec is the best baseline."""

    def run(cells, results, data_root, rerun=False, threads=None):
        records = {}
        for cell in cells:
            calls.append(cell)
            overrides = dict(cell.overrides)
            if cell.model != "SDMTMP":
                positions = [0, 0, 1, 30] if cell.model == "SASRec" else [30, 30, 2, 30]
            elif overrides.get("short_term_source") == "complete_record":
                positions = [0, 0, 0, 0]
            elif overrides.get("topic_reviews") == "leaky_all":
                positions = [0, 0, 0, 30]
            elif overrides.get("beta") == 0.2:
                positions = [0, 0, 30, 30]
            else:
                positions = [0, 30, 30, 30]
            records[cell] = fake_record(cell.label, cell.seed, positions)
        return records

    return run


def test_the_steps_add_one_thing_each_and_the_report_says_which_read_the_test(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(paper_claim, "run_cells", fake_runner(calls))
    monkeypatch.setattr(paper_claim, "build_config", lambda model, dataset, config_dict: DEFAULTS)
    steps = paper_claim.run_paper_claim("toy", [1, 2], tmp_path, "unused", storage=f"sqlite:///{tmp_path}/none.db")
    assert [s.step.number for s in steps] == [1, 2, 3, 4, 5]
    assert steps[0].pending and steps[1].pending and "recbole_sdmtmp.tune" in steps[0].pending
    step3, step4, step5 = steps[2:]
    assert step3.chosen == {"beta": 0.2} and step3.ours.label == "SD-MTMP beta=0.2"  # a sweep point, not re-run
    assert step4.chosen == {"beta": 0.2, "topic_reviews": "leaky_all"}
    assert step5.chosen == {"beta": 0.2, "topic_reviews": "leaky_all", "short_term_source": "complete_record"}
    assert {c.protocol for c in calls} == {"paper_as_printed"}
    baselines = {c.model for c in calls if c.model != "SDMTMP"}
    assert baselines == set(catalogue.CLAIM_BASELINES) and all(not c.overrides for c in calls if c.model != "SDMTMP")
    sdmtmp_labels = {c.label for c in calls if c.model == "SDMTMP"}
    assert len(sdmtmp_labels) == 15 + 3  # 15 distinct sweep points, steps 4 and 5, step 5 untrained
    untrained = [c for c in calls if c.label == paper_claim.UNTRAINED]
    assert untrained and all(not c.trained and dict(c.overrides) == step5.chosen for c in untrained)
    assert all(c.trained for c in calls if c.label != paper_claim.UNTRAINED)
    assert step5.untrained.label == paper_claim.UNTRAINED
    summaries = [step_summary(s.step.number, s.ours, s.others) for s in steps[2:]]
    assert [s["rank"] for s in summaries] == [2, 1, 1] and summaries[0]["best"] == "SASRec"

    text = tables.write_paper_claim(steps, "toy", tmp_path, "python -m studies paper_claim").read_text()
    assert text.startswith("# toy: why the paper found otherwise, its procedure step by step (steps 2-5: selection on the test split)")
    for number in (3, 4, 5):
        assert f"## Step {number} (selection on the test split):" in text
    assert "| 1 | the verdict" in text and "not run yet:" in text
    assert "| 3 | + SD-MTMP's one-at-a-time sweeps" in text and "| 2 of 10 | SASRec |" in text
    assert "| 5 | + short-term window" in text and "| 1 of 10 |" in text
    assert "| β = 0.2 | 2 |" in text and "| d = 256 (default) | 2 |" in text
    assert (tmp_path / "figures" / "paper_claim_toy.png").stat().st_size > 0
    csv_lines = (tmp_path / "paper_claim_toy.csv").read_text().splitlines()
    assert csv_lines[0].startswith("dataset,step,model,seeds,rank,HR@10_mean")
    assert len(csv_lines) == 1 + 3 * 10 + 1  # step 5's untrained row, not ranked
    assert csv_lines[-1].startswith(f'toy,5,"{paper_claim.UNTRAINED}",2,,')
    assert f"| {paper_claim.UNTRAINED} | 2 |" in text


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def test_the_leaking_steps_run_through_the_real_runner_and_change_the_scores(tiny_root, tmp_path, monkeypatch):
    """Steps 3-5 on the tiny dataset with one baseline and one sweep point per knob: the printed
    split, the leaky topics and the complete-record window each reach the model."""
    from tests.tiny_data import hand_made_training_fits

    hand_made_training_fits(monkeypatch)  # step 3's topics: the training reviews' rows of the hand-made fit
    monkeypatch.setattr(paper_claim, "CLAIM_BASELINES", ("Pop",))
    monkeypatch.setattr(paper_claim, "SWEPT", ("beta",))
    monkeypatch.setattr(paper_claim, "sweep_values", lambda param: [0.0, 0.4])
    real_run_cells = paper_claim.run_cells

    def small(cells, *args, **kwargs):  # tiny models, two epochs
        small_cells = [store.Cell(c.label, c.model, c.dataset, c.seed,
                                  store.frozen_overrides({**dict(c.overrides), "epochs": 2, "embedding_size": 8,
                                                          "eval_batch_size": 3, "n_layers": 1}),
                                  c.protocol, c.study) for c in cells]
        records = real_run_cells(small_cells, *args, **kwargs)
        return {cell: records[small_cell] for cell, small_cell in zip(cells, small_cells)}

    monkeypatch.setattr(paper_claim, "run_cells", small)
    steps = paper_claim.run_paper_claim("tiny", [1], tmp_path, str(tiny_root), steps=(3, 4, 5))
    assert [s.step.number for s in steps] == [3, 4, 5]
    records = [s.ours.runs[0] for s in steps]
    cases = {len(r["test_case_metrics"]["ndcg@10"]) for r in records}
    assert len(cases) == 1  # one case per user under the printed split, the same users every step
    scores = [r["test_result"]["ndcg@10"] for r in records]
    assert len(set(scores)) == 3  # leaky topics and then the test period as input each change the ranking


def test_status_reads_the_steps_from_their_cells_without_running_any(tmp_path, monkeypatch):
    """run=False (what `status` calls): nothing runs; a step is pending with its count of finished
    cells until every one is written, then it is read back like a run."""
    import json

    def no_run(*args, **kwargs):
        raise AssertionError("status must not run cells")

    monkeypatch.setattr(paper_claim, "run_cells", no_run)
    monkeypatch.setattr(paper_claim, "build_config", lambda model, dataset, config_dict: DEFAULTS)
    on_fit(monkeypatch)
    storage = f"sqlite:///{tmp_path}/none.db"
    steps = paper_claim.run_paper_claim("toy", [1, 2], tmp_path, "unused", storage=storage, run=False)
    assert [s.pending for s in steps[2:]] == ["step 3's defaults and sweeps: 0 of 48 cells finished"] * 3
    labels = [(m, m, {}) for m in catalogue.CLAIM_BASELINES]
    labels += [(label, "SDMTMP", overrides) for label, overrides in
               {label: o for _, _, label, o in paper_claim.sweep_configurations(DEFAULTS)}.items()]
    for label, model, overrides in labels:
        for seed in (1, 2):
            cell = store.Cell(label, model, "toy", seed, store.frozen_overrides(overrides), "paper_as_printed", "cells")
            cell.path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
            positions = [0, 0, 0, 30] if label == "SD-MTMP gamma2=0.6" else [30, 30, 0, 30]
            record = {**fake_record(label, seed, positions), "overrides": overrides, "cell_version": store.CELL_VERSION,
                      "topics_fit": FIT}
            cell.path(tmp_path).write_text(json.dumps(record))
    steps = paper_claim.run_paper_claim("toy", [1, 2], tmp_path, "unused", storage=storage, run=False)
    assert steps[2].pending is None and steps[2].chosen == {"gamma2": 0.6}
    assert steps[2].ours.label == "SD-MTMP gamma2=0.6" and len(steps[2].others) == len(catalogue.CLAIM_BASELINES)
    assert [s.pending for s in steps[3:]] == ["0 of 2 cells finished"] * 2
