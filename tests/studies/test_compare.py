"""The comparison runner and the tuning study: finished cells are skipped, dotted overrides
reach nested settings, trials never read the test split, the choice is the best validation
score, and the tables say what the numbers say."""

import json

import numpy as np
import pytest

from recbole_sdmtmp import compare, tune
from recbole_sdmtmp.experiments import catalogue, cells as store, planning, statistics, tables, tuning
from studies import __main__ as studies_cli
from studies import catalogue as study_catalogue, figures as study_figures, planning as study_planning
from studies import tables as study_tables
from tests.tiny_data import write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def settings(root, tmp_path, **extra):
    return {"data_path": str(root), "checkpoint_dir": str(tmp_path / "saved"), "epochs": 2,
            "show_progress": False, "embedding_size": 8, "eval_batch_size": 3, **extra}


def test_runner_skips_finished_cells(tiny_root, tmp_path, monkeypatch):
    import recbole_sdmtmp.runner as runner

    calls = []
    real_run = runner.run

    def counting_run(*args, **kwargs):
        calls.append(args)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(runner, "run", counting_run)
    results = tmp_path / "results"
    cells = [store.Cell("BPR", "BPR", "tiny", seed, (("epochs", 1), ("embedding_size", 8)))
             for seed in (1, 2)]
    first = store.run_cells(cells, results, str(tiny_root))
    assert len(calls) == 2 and all(cell.path(results).is_file() for cell in cells)
    second = store.run_cells(cells, results, str(tiny_root))
    assert len(calls) == 2  # nothing ran again
    assert {c: r["test_result"] for c, r in first.items()} == {c: r["test_result"] for c, r in second.items()}
    store.run_cells(cells[:1], results, str(tiny_root), rerun=True)
    assert len(calls) == 3


def test_a_cell_finished_by_another_process_meanwhile_is_not_run(tiny_root, tmp_path, monkeypatch):
    """Two studies can share the cells: each checks a cell's file right before running it."""
    import recbole_sdmtmp.runner as runner

    results = tmp_path / "results"
    cells = [store.Cell("BPR", "BPR", "tiny", seed, (("epochs", 1), ("embedding_size", 8))) for seed in (1, 2)]
    calls = []
    real_run = runner.run

    def run_and_finish_the_other(*args, **kwargs):
        calls.append(args[0]["seed"])
        result = real_run(*args, **kwargs)
        other = cells[1].path(results)  # as if a second process had just written seed 2
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_text(json.dumps({"label": "BPR", "cell_version": store.CELL_VERSION, "test_result": {"hit@10": 0.5}}))
        return result

    monkeypatch.setattr(runner, "run", run_and_finish_the_other)
    records = store.run_cells(cells, results, str(tiny_root))
    assert calls == [1] and records[cells[1]]["test_result"] == {"hit@10": 0.5}


def single_positive_metrics(positions, topk=(10, 20)):
    """Per-case HR@k and NDCG@k of one relevant item at each 0-based position (k = absent)."""
    positions = np.asarray(positions)
    metrics = {}
    for k in topk:
        metrics[f"hit@{k}"] = (positions < k).astype(float)
        metrics[f"ndcg@{k}"] = np.where(positions < k, 1.0 / np.log2(positions + 2.0), 0.0)
    return metrics


def fake_record(label, seed, positions, epoch_s=1.0):
    metrics = single_positive_metrics(positions)
    return {"label": label, "seed": seed, "epochs": 10,
            "test_case_metrics": {m: v.tolist() for m, v in metrics.items()},
            "test_result": {m: float(v.mean()) for m, v in metrics.items()},
            "train_seconds_per_epoch": epoch_s, "eval_seconds": 0.5, "device": "cpu"}


def test_tables_bold_the_best_and_report_significance(tmp_path):
    ours = [0, 0, 1, 2, 30, 3, 0, 1] * 5
    theirs = [5, 9, 30, 30, 30, 30, 8, 30] * 5
    records = {}
    for seed in (1, 2):
        records[store.Cell("SD-MTMP", "SDMTMP", "toy", seed)] = fake_record("SD-MTMP", seed, ours, 2.0)
        records[store.Cell("SASRec", "SASRec", "toy", seed)] = fake_record("SASRec", seed, theirs, 1.0)
    path = tables.write_comparison(records, "toy", tmp_path, "cmd", protocol="paper")
    assert path.name == "toy_paper.md"
    text = path.read_text()
    assert "| SD-MTMP | 2 | **" in text and "| SASRec | 2 | 0." in text
    assert "best baseline by NDCG@10 (SASRec)" in text
    tests = statistics.significance(statistics.aggregate(records, "toy")[0], statistics.aggregate(records, "toy")[1])
    assert all(test["wilcoxon_p"] < 0.05 and test["difference"] > 0 for test in tests)
    assert "| SASRec | 1.00 | 0.50 | 10 | A | 0.50 |" in text  # epoch time ratio to SD-MTMP, one machine
    assert "against the floors" not in text  # neither Pop, ItemKNN nor NGCF was compared
    csv_lines = (tmp_path / "toy_paper.csv").read_text().splitlines()
    assert csv_lines[0].startswith("dataset,model,seeds,HR@10_mean,HR@10_std")
    assert len(csv_lines) == 3


def test_a_better_baseline_is_bold(tmp_path):
    records = {store.Cell("SD-MTMP", "SDMTMP", "toy", 1): fake_record("SD-MTMP", 1, [30, 30, 1]),
               store.Cell("BPR", "BPR", "toy", 1): fake_record("BPR", 1, [0, 0, 0])}
    text = tables.write_comparison(records, "toy", tmp_path, "cmd").read_text()
    assert "| BPR | 1 | **1.0000 ± 0.0000** |" in text
    assert "| SD-MTMP | 1 | 0.3333" in text


def test_the_table_names_the_topic_fit_of_sd_mtmp_s_cells(tmp_path):
    records = {store.Cell("SD-MTMP", "SDMTMP", "toy", 1): {**fake_record("SD-MTMP", 1, [1]), "topics_fit": "abc"},
               store.Cell("BPR", "BPR", "toy", 1): fake_record("BPR", 1, [0])}
    text = tables.write_comparison(records, "toy", tmp_path, "cmd").read_text()
    assert "SD-MTMP's cells read topic fit `abc` (the ids in `results/datasets.md`" in text
    del records[store.Cell("SD-MTMP", "SDMTMP", "toy", 1)]["topics_fit"]
    assert "topic fit" not in tables.write_comparison(records, "toy", tmp_path, "cmd").read_text()


def test_sd_mtmp_is_tested_against_the_floors_and_ngcf(tmp_path):
    """HR@10 by hand: SD-MTMP hits 2 of 3 cases, Pop 0, NGCF 3; BPR is no floor."""
    records = {store.Cell(label, label, "toy", 1): fake_record(label, 1, positions)
               for label, positions in (("SD-MTMP", [0, 1, 30]), ("Pop", [30, 30, 30]),
                                        ("NGCF", [0, 0, 0]), ("BPR", [30, 30, 30]))}
    text = tables.write_comparison(records, "toy", tmp_path, "cmd").read_text()
    section = text.split("against the floors and its backbone (")[1].split("## Time")[0]
    assert section.startswith("Pop, NGCF)") or section.startswith("NGCF, Pop)")
    assert "| Pop | HR@10 | 0.6667 | 0.0000 | +0.6667 |" in section
    assert "| NGCF | HR@10 | 0.6667 | 1.0000 | -0.3333 |" in section
    assert "| BPR |" not in section


def test_the_ablation_tests_the_full_model_against_each_part(tmp_path):
    """HR@10 by hand: the full model hits 2 of 3 cases, w/o-H 3 (removing it helps), w/o-A 0."""
    records = {store.Cell(label, "SDMTMP", "toy", 1): fake_record(label, 1, positions)
               for label, positions in (("SD-MTMP", [0, 1, 30]), ("w/o-H", [0, 0, 0]),
                                        ("w/o-A", [30, 30, 30]))}
    text = study_tables.write_ablation(records, "toy", tmp_path, "cmd").read_text()
    section = text.split("What each part adds")[1]
    assert "| w/o-H | HR@10 | 0.6667 | 1.0000 | -0.3333 |" in section
    assert "| w/o-A | HR@10 | 0.6667 | 0.0000 | +0.6667 |" in section
    assert "| SD-MTMP | HR@10" not in section


def test_sensitivity_figure(tmp_path):
    records = {}
    for value, positions in ((64, [0, 30]), (128, [0, 0])):
        label = study_catalogue.sweep_label("embedding_size", value)
        records[store.Cell(label, "SDMTMP", "toy", 1)] = fake_record(label, 1, positions)
    paths = study_figures.plot_sensitivity(records, ["toy"], "embedding_size", [64, 128], tmp_path, "paper")
    assert [p.name for p in paths] == ["sensitivity_embedding_size_toy_paper_hr.png",
                                       "sensitivity_embedding_size_toy_paper_ndcg.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    other = study_figures.plot_sensitivity({store.Cell(c.label, c.model, "toy2", 1): r for c, r in records.items()},
                                     ["toy2"], "embedding_size", [64, 128], tmp_path, "paper")
    assert {p.name for p in other}.isdisjoint(p.name for p in paths)  # no overwrite of the first's
    assert all(p.is_file() for p in paths + other)


def test_a_tuned_sweep_reads_the_tuned_models_cells_at_its_own_value(tmp_path, monkeypatch):
    """Sweeping d over a configuration tuned at d 128: the value 128 is the tuned model itself,
    so its cells are SD-MTMP's, not a second run of the same configuration."""
    asked = []

    def fake_run_cells(cells, results, data_root, rerun=False, threads=None):
        asked.extend(cells)
        valid = {catalogue.OURS: 0.2}  # the tuned row; the swept value 0.1
        return {cell: {**fake_record(cell.label, cell.seed, [0, 30]),
                       "best_valid_result": {"ndcg@10": valid.get(cell.label, 0.1)}} for cell in cells}

    def chosen(results, model, dataset, protocol, storage=None, data_root=None):
        return {"embedding_size": 128, "beta": 0.3}

    monkeypatch.setattr(studies_cli, "run_cells", fake_run_cells)
    monkeypatch.setattr(compare, "ensure_prepared", lambda config: None)  # no "toy" raw file to prepare
    monkeypatch.setattr(planning, "tuned_overrides", chosen)
    monkeypatch.setattr(study_planning, "tuned_overrides", chosen)
    studies_cli.main(["sensitivity", "--param", "embedding_size", "--values", "64", "128", "--tuned",
                  "--datasets", "toy", "--seeds", "1", "--results", str(tmp_path)])
    labels = {cell.label: dict(cell.overrides) for cell in asked}
    assert labels == {study_catalogue.sweep_label("embedding_size", 64): {"embedding_size": 64, "beta": 0.3},
                      catalogue.OURS: {"embedding_size": 128, "beta": 0.3}}
    assert (tmp_path / "figures" / "sensitivity_embedding_size_toy_paper_ndcg.png").is_file()
    table = (tmp_path / "sensitivity_embedding_size_toy_paper.md").read_text()
    assert "| d = 64 | 1 | **0.5000 ± 0.0000** |" in table  # HR@10: one hit of two cases
    assert "| d = 64 | 1 | **0.5000 ± 0.0000** |" in table and "| 0.1000 ± 0.0000 |\n" in table
    assert table.split("| d = 128 (tuned) |")[1].split("\n")[0].endswith("| 0.2000 ± 0.0000 |")
    assert "| d = 128 (tuned) | 1 |" in table
    assert "](figures/sensitivity_embedding_size_toy_paper_ndcg.png)" in table


def test_every_protocol_has_a_table_note(tmp_path):
    """A table under any protocol says what its protocol is (a missing note failed after the run)."""
    records = {store.Cell(label, label, "toy", 1): fake_record(label, 1, positions)
               for label, positions in (("SD-MTMP", [5, 30]), ("Pop", [30, 30]))}
    texts = {protocol: tables.write_comparison(records, "toy", tmp_path, "cmd", protocol=protocol).read_text()
             for protocol in catalogue.PROTOCOLS}
    assert all(f"Produced by `cmd`. Protocol `{protocol}`" in text for protocol, text in texts.items())
    assert "two global cuts" in texts["global_time"] and "two global cuts" not in texts["paper"]
    assert "early stopping reads the test split" in texts["paper_as_printed"]


def test_comparison_figure_ranks_models_by_ndcg(tmp_path):
    records = {store.Cell(label, label, "toy", 1): fake_record(label, 1, positions)
               for label, positions in (("SD-MTMP", [5, 30, 30]), ("Pop", [30, 30, 30]),
                                        ("SASRec", [0, 0, 30]))}
    rows = statistics.aggregate(records, "toy")
    assert [row.label for row in statistics.ranked(rows)] == ["SASRec", "SD-MTMP", "Pop"]
    text = tables.write_comparison(records, "toy", tmp_path, "cmd", protocol="next_item").read_text()
    figure = tmp_path / "figures" / "toy_next_item.png"
    assert "](figures/toy_next_item.png)" in text
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 5000


def test_tables_name_the_command_that_made_them(tmp_path, monkeypatch):
    records = {store.Cell("SD-MTMP", "SDMTMP", "toy", 1): fake_record("SD-MTMP", 1, [0, 3])}
    monkeypatch.setattr(compare, "run_cells", lambda cells, results, data_root, rerun=False, threads=None: records)
    monkeypatch.setattr(compare, "ensure_prepared", lambda config: None)  # no "toy" raw file to prepare
    argv = ["table", "--datasets", "toy", "--seeds", "1", "--results", str(tmp_path), "--models", "SDMTMP"]
    compare.main(argv)
    assert f"python -m recbole_sdmtmp.compare {' '.join(argv)}" in (tmp_path / "toy_paper.md").read_text()


def test_dotted_overrides_update_a_copy_of_the_nested_setting():
    base = {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}
    expanded = store.expand_overrides({"train_neg_sample_args.sample_num": 4, "beta": 0.1}, base)
    assert expanded == {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 4}, "beta": 0.1}
    assert base["train_neg_sample_args"]["sample_num"] == 1


def test_every_compared_model_declares_a_search_space():
    for model in tuning.MODELS:
        assert all(isinstance(knob, tuning.Knob) for knob in tuning.search_space(model).values())
    assert set(tuning.search_space("SDMTMP")) >= {"embedding_size", "n_layers", "beta", "gamma2",
                                                "learning_rate", "reg_weight", "dropout_rate",
                                                "train_neg_sample_args.sample_num",
                                                "attention_norm", "sd_direction"}


def test_tuning_report_keeps_every_tuned_model_when_one_model_is_resumed(tmp_path):
    """``tune --models RRPU`` (one model resumed) must not drop the other models' rows."""
    from tests.study_data import add_trials

    results = tmp_path / "results"
    for model, score in (("BPR", 0.2), ("RRPU", 0.3)):
        add_trials(results, model, "toy", "paper", [{}], [score])
    tune.main(["--protocol", "paper", "--datasets", "toy", "--models", "RRPU", "--trials", "1",
               "--results", str(results), "--report-only"])
    report = (results / "tuning_toy_paper.md").read_text()
    assert "| BPR | 1 |" in report and "| RRPU | 1 |" in report
    assert "`python -m recbole_sdmtmp.tune --protocol paper --datasets toy --trials 1`" in report


def test_list_valued_settings_survive_a_cell(tiny_root, tmp_path):
    """NGCF's hidden_size_list is a list (a JSON string in the store): the cell must hash, and
    the model must get a list."""
    import optuna

    knob = tuning.search_space("NGCF")["hidden_size_list"]
    value = knob.suggest(optuna.trial.FixedTrial({"hidden_size_list": "[64, 64]"}), "hidden_size_list")
    cell = store.Cell("NGCF", "NGCF", "tiny", 3, store.frozen_overrides({"hidden_size_list": value, "epochs": 1}),
                        "paper", "tuning", False)
    hash(cell)
    record = store.run_cells([cell], tmp_path / "results", str(tiny_root))[cell]
    assert record["overrides"]["hidden_size_list"] == [64, 64]


def test_readings_table_reports_validation_and_each_change(tmp_path):
    records = {}
    for label, positions, valid in (("SD-MTMP", [0, 30], 0.2), ("attention: product divided by its sum", [0, 0], 0.3)):
        for seed in (1, 2):
            record = fake_record(label, seed, positions)
            record["best_valid_result"] = {"ndcg@10": valid + seed / 100}
            records[store.Cell(label, "SDMTMP", "toy", seed)] = record
    text = study_tables.write_readings(records, "toy", tmp_path, "cmd").read_text()
    assert "| SD-MTMP | 2 | 0.2150 ± 0.0071 | 0.5000 ± 0.0000 |" in text
    assert "| attention: product divided by its sum | 2 | 0.3150 ± 0.0071 | 1.0000 ± 0.0000 |" in text


def test_a_cell_run_with_other_settings_is_run_again(tiny_root, tmp_path):
    """A tuned configuration replaced by a longer study must not keep its old results."""
    results = tmp_path / "results"
    old = store.Cell("BPR", "BPR", "tiny", 1, (("epochs", 1), ("embedding_size", 8)))
    first = store.run_cells([old], results, str(tiny_root))[old]
    assert store.finished_record(old, results) == first
    new = store.Cell("BPR", "BPR", "tiny", 1, (("epochs", 1), ("embedding_size", 16)))
    assert new.path(results) == old.path(results) and store.finished_record(new, results) is None
    second = store.run_cells([new], results, str(tiny_root))[new]
    assert second["overrides"]["embedding_size"] == 16
    # a cell written by older code (before Pop's count, every training interaction, per-case
    # negatives: no cell_version) is run again too
    assert second["cell_version"] == store.CELL_VERSION
    stale = {key: value for key, value in second.items() if key != "cell_version"}
    new.path(results).write_text(json.dumps(stale))
    assert store.finished_record(new, results) is None


def test_a_cleared_setting_wins_over_tuned_dotted_keys():
    """The CE variant clears the negatives a tuned BPR configuration asked for."""
    base = {"train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}
    overrides = {"train_neg_sample_args.sample_num": 16, "train_neg_sample_args": None, "loss_type": "CE"}
    assert store.expand_overrides(overrides, base) == {"train_neg_sample_args": None, "loss_type": "CE"}


def test_variants_are_extra_labelled_rows(tmp_path):
    records = {}
    for label in ("SD-MTMP", "beyond the paper: cross-entropy over every item"):
        record = fake_record(label, 1, [0, 30])
        record["best_valid_result"] = {"ndcg@10": 0.1}
        records[store.Cell(label, "SDMTMP", "toy", 1)] = record
    path = study_tables.write_readings(records, "toy", tmp_path, "cmd", study="variants")
    text = path.read_text()
    assert path.name == "variants_toy_paper.md" and "never a replacement" in text
    assert text.index("| SD-MTMP |") < text.index("| beyond the paper: cross-entropy over every item |")


def test_the_printed_procedure_says_selection_on_the_test_split_in_every_title():
    from recbole_sdmtmp.experiments.catalogue import protocol_title

    assert protocol_title("paper_as_printed") == "`paper_as_printed` (selection on the test split)"
    assert protocol_title("paper_as_printed", code=False) == "paper_as_printed (selection on the test split)"
    assert protocol_title("paper") == "`paper`" and "test split" not in protocol_title("next_item")
    import inspect

    from recbole_sdmtmp.experiments import figures, tables, tuning

    for module in (tables, figures, tuning, study_tables, study_figures):  # no title spells the protocol another way
        source = inspect.getsource(module)
        for spelled in ("protocol `{protocol}`", "(protocol {protocol})", ", protocol {protocol}\")"):
            assert spelled not in source, (module.__name__, spelled)

