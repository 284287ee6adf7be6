"""The study status reads what is finished from the cell files and names what is left."""

import json

from recbole_sdmtmp import status
from recbole_sdmtmp.compare import Cell, frozen_overrides, thaw
from recbole_sdmtmp.tune import trial_cells


def write(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def finish_trials(results, model, count, scores):
    for cell, score in zip(trial_cells(model, "toy", "paper", 6, 2024)[:count], scores):
        write(cell.path(results), {"overrides": {k: thaw(v) for k, v in cell.overrides},
                                   "best_valid_result": {"ndcg@10": score}})


def test_status_counts_trials_and_current_seeds(tmp_path):
    finish_trials(tmp_path, "Pop", 1, [0.02])
    finish_trials(tmp_path, "ItemKNN", 6, [0.03, 0.05, 0.04, 0.01, 0.02, 0.05])
    finish_trials(tmp_path, "BPR", 2, [0.03, 0.04])
    for seed in (2024, 2025, 2026):
        write(Cell("Pop", "Pop", "toy", seed, (), "paper", "cells_tuned").path(tmp_path), {"overrides": {}})
    chosen = trial_cells("ItemKNN", "toy", "paper", 6, 2024)[1]  # the earlier of the two best
    write(Cell("ItemKNN", "ItemKNN", "toy", 2024, chosen.overrides, "paper", "cells_tuned").path(tmp_path),
          {"overrides": {k: thaw(v) for k, v in chosen.overrides}})
    stale = trial_cells("ItemKNN", "toy", "paper", 6, 2024)[2]  # tested with a choice since replaced
    write(Cell("ItemKNN", "ItemKNN", "toy", 2025, stale.overrides, "paper", "cells_tuned").path(tmp_path),
          {"overrides": {k: thaw(v) for k, v in stale.overrides}})

    states = {m: status.model_state(tmp_path, m, "toy", "paper", 6) for m in ("Pop", "ItemKNN", "BPR", "SASRec")}
    assert (states["Pop"]["trials"], states["Pop"]["planned"], states["Pop"]["state"]) == (1, 1, "done")
    assert states["ItemKNN"]["valid"] == 0.05 and states["ItemKNN"]["seeds"] == 1
    assert states["ItemKNN"]["state"] == "testing"
    assert (states["BPR"]["trials"], states["BPR"]["planned"], states["BPR"]["state"]) == (2, 6, "tuning")
    assert states["SASRec"]["trials"] == 0 and states["SASRec"]["valid"] is None

    assert status.studies_found(tmp_path) == [("toy", "paper")]
    text = "\n".join(status.study_report(tmp_path, "toy", "paper", 6))
    assert "| ItemKNN | 6/6 | 0.0500 | 1/3 | testing |" in text
    assert "python -m recbole_sdmtmp.tune --protocol paper --datasets toy --trials 6" in text


def test_a_complete_study_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(status, "MODELS", ("Pop",))
    finish_trials(tmp_path, "Pop", 1, [0.02])
    for seed in status.SEEDS:
        write(Cell("Pop", "Pop", "toy", seed, frozen_overrides({}), "paper", "cells_tuned").path(tmp_path),
              {"overrides": {}})
    text = "\n".join(status.study_report(tmp_path, "toy", "paper", 6))
    assert "Complete." in text and "Resume" not in text


def test_sdmtmp_studies_count_their_own_cells_and_share_the_tuned_row(tmp_path):
    """Ablation: 5 rows x 3 seeds; the beta sweep's tuned value is the tuned model's own row."""
    finish_trials(tmp_path, "SDMTMP", 6, [0.01, 0.02, 0.09, 0.03, 0.04, 0.05])
    chosen = dict(trial_cells("SDMTMP", "toy", "paper", 6, 2024)[2].overrides)

    def finish(label, seed, **changes):
        settings = frozen_overrides({**chosen, **changes})
        write(Cell(label, "SDMTMP", "toy", seed, settings, "paper", "cells_tuned").path(tmp_path),
              {"overrides": {k: thaw(v) for k, v in settings}})

    for seed in status.SEEDS:
        finish("SD-MTMP", seed)
    assert status.sdmtmp_studies_report(tmp_path, "toy", "paper") == []  # no study of its own begun
    finish("w/o-H", 2024, ablation="w/o-H")
    other_beta = next(v for v in (0.0, 0.1) if v != chosen["beta"])
    finish(f"SD-MTMP beta={other_beta}", 2024, beta=other_beta)
    text = "\n".join(status.sdmtmp_studies_report(tmp_path, "toy", "paper"))
    assert ("| ablation | 4/15 | `python -m recbole_sdmtmp.compare ablation --protocol paper "
            "--datasets toy --tuned` |") in text
    assert "| sensitivity `beta` | 4/18 |" in text  # 3 tuned-row cells + 1 sweep cell
    assert "gamma2" not in text and "variants" not in text
