"""The study status reads the trials from the store, the test seeds from the cell files, and
names what is left."""

import json

from optuna.trial import TrialState

from studies import status
from recbole_sdmtmp.experiments.cells import CELL_VERSION, Cell, frozen_overrides
from tests.study_data import FIT, add_trials, on_fit

ITEMKNN = [{"k": k, "shrink": 0.0} for k in (10, 20, 50, 100, 200, 30)]


def write(path, record):
    """A finished cell's record, as today's code writes it (``cell_version``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cell_version": CELL_VERSION, **record}))


def test_status_counts_trials_and_current_seeds(tmp_path, monkeypatch):
    add_trials(tmp_path, "Pop", "toy", "paper", [{}], [0.02])
    add_trials(tmp_path, "ItemKNN", "toy", "paper", ITEMKNN, [0.03, 0.05, 0.04, 0.01, 0.05, 0.07],
               states={5: TrialState.PRUNED})  # a pruned trial counts as run, never as chosen
    add_trials(tmp_path, "BPR", "toy", "paper", [{}, {"learning_rate": 0.002}], [0.03, 0.04])
    seeds = (2024, 2025, 2026)
    for seed in seeds:
        write(Cell("Pop", "Pop", "toy", seed, (), "paper", "cells_tuned").path(tmp_path), {"overrides": {}})
    chosen = frozen_overrides(ITEMKNN[1])  # the earlier of the two best complete trials
    write(Cell("ItemKNN", "ItemKNN", "toy", 2024, chosen, "paper", "cells_tuned").path(tmp_path),
          {"overrides": ITEMKNN[1]})
    stale = frozen_overrides(ITEMKNN[2])  # tested with a choice since replaced
    write(Cell("ItemKNN", "ItemKNN", "toy", 2025, stale, "paper", "cells_tuned").path(tmp_path),
          {"overrides": ITEMKNN[2]})

    states = {m: status.model_state(tmp_path, m, "toy", "paper", 6, seeds) for m in ("Pop", "ItemKNN", "BPR", "SASRec")}
    assert (states["Pop"]["trials"], states["Pop"]["planned"], states["Pop"]["state"]) == (1, 1, "done")
    assert states["ItemKNN"]["valid"] == 0.05 and states["ItemKNN"]["seeds"] == 1
    assert states["ItemKNN"]["state"] == "testing" and states["ItemKNN"]["pruned"] == 1
    assert (states["BPR"]["trials"], states["BPR"]["planned"], states["BPR"]["state"]) == (2, 6, "tuning")
    assert states["SASRec"]["trials"] == 0 and states["SASRec"]["valid"] is None

    assert status.studies_found(tmp_path) == [("toy", "paper")]
    text = "\n".join(status.study_report(tmp_path, "toy", "paper", 6, seeds))
    assert "| ItemKNN | 6/6 | 1 / 0 | 0.0500 | 1/3 | testing |" in text
    assert "python -m recbole_sdmtmp.tune --protocol paper --datasets toy --trials 6`" in text
    assert "--tuned --seeds 2024 2025 2026`" in text


def test_a_complete_study_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(status, "MODELS", ("Pop",))
    add_trials(tmp_path, "Pop", "toy", "paper", [{}], [0.02])
    for seed in status.SEEDS:
        write(Cell("Pop", "Pop", "toy", seed, frozen_overrides({}), "paper", "cells_tuned").path(tmp_path),
              {"overrides": {}})
    text = "\n".join(status.study_report(tmp_path, "toy", "paper", 6))
    assert "Complete." in text and "Resume" not in text
    assert "| Pop | 1/1 | 0 / 0 | 0.0200 | 5/5 | done |" in text


def test_status_reads_the_studies_of_the_store(tmp_path, capsys):
    assert status.studies_found(tmp_path) == []
    try:
        status.main(["--results", str(tmp_path)])
    except SystemExit as error:
        assert "no tuning study in" in str(error) and "studies.journal" in str(error)
    else:
        raise AssertionError("status found a study in an empty results folder")
    assert not (tmp_path / "tuning").exists()  # reading created no store
    add_trials(tmp_path, "BPR", "toy", "next_item", [{}], [0.1])
    assert status.studies_found(tmp_path) == [("toy", "next_item")]


def test_sdmtmp_studies_count_their_own_cells_and_share_the_tuned_row(tmp_path, monkeypatch):
    """Ablation: 5 rows x 3 seeds; the beta sweep's tuned value is the tuned model's own row."""
    on_fit(monkeypatch)
    configurations = [{"beta": beta, "embedding_size": 64} for beta in (0.4, 0.1, 0.2, 0.3, 0.0, 0.5)]
    add_trials(tmp_path, "SDMTMP", "toy", "paper", configurations, [0.01, 0.02, 0.09, 0.03, 0.04, 0.05])
    chosen = configurations[2]
    seeds = (2024, 2025, 2026)

    def finish(label, seed, **changes):
        settings = frozen_overrides({**chosen, **changes})
        write(Cell(label, "SDMTMP", "toy", seed, settings, "paper", "cells_tuned").path(tmp_path),
              {"overrides": dict(settings), "topics_fit": FIT})

    for seed in seeds:
        finish("SD-MTMP", seed)
    assert status.sdmtmp_studies_report(tmp_path, "toy", "paper", seeds) == []  # no study of its own begun
    finish("w/o-H", 2024, ablation="w/o-H")
    finish("SD-MTMP beta=0.1", 2024, beta=0.1)
    text = "\n".join(status.sdmtmp_studies_report(tmp_path, "toy", "paper", seeds))
    assert ("| ablation | 4/15 | `python -m studies ablation --protocol paper "
            "--datasets toy --tuned` |") in text
    assert "| sensitivity `beta` | 4/18 |" in text  # 3 tuned-row cells + 1 sweep cell
    assert "gamma2" not in text and "variants" not in text


def test_a_dataset_with_paper_claim_cells_but_no_study_is_shown(tmp_path, capsys, monkeypatch):
    """Instrument's paper-claim sweeps ran before its studies: status shows them, and the study
    that steps 1-2 wait for, instead of 'no study'."""
    write(tmp_path / "cells" / "paper_as_printed" / "toy" / "SD-MTMP" / "seed2024.json", {})
    assert status.claim_datasets(tmp_path) == ["toy"]
    monkeypatch.setattr(status, "paper_claim_report",
                        lambda results, dataset, storage=None, data_root=None: [f"claim steps of {dataset}"])
    assert status.main(["--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "No `paper` tuning study on toy yet" in out and "claim steps of toy" in out
    try:
        status.main(["--results", str(tmp_path), "--protocol", "next_item"])
    except SystemExit as error:
        assert "no tuning study" in str(error)
    else:
        raise AssertionError("a next_item status showed the paper-claim steps")


def test_a_dataset_not_prepared_yet_is_told_apart_from_a_study_on_other_topics(tmp_path, monkeypatch):
    """Before its dataset is prepared, SD-MTMP's committed study is not 'tuned on other topics'
    (whose advice, --restart, would throw the study away): the report says to prepare it."""
    add_trials(tmp_path, "SDMTMP", "toy", "paper", [{}], [0.02])
    on_fit(monkeypatch, None)  # no topic files yet
    assert status.model_state(tmp_path, "SDMTMP", "toy", "paper", 1)["state"] == status.NOT_PREPARED
    monkeypatch.setattr(status, "MODELS", ("SDMTMP",))
    text = "\n".join(status.study_report(tmp_path, "toy", "paper", 1))
    assert "python -m dataset_preprocess toy" in text and "--restart" not in text
    on_fit(monkeypatch, "another fit")
    assert status.model_state(tmp_path, "SDMTMP", "toy", "paper", 1)["state"] == status.OTHER_FIT
    assert "--restart" in "\n".join(status.study_report(tmp_path, "toy", "paper", 1))
