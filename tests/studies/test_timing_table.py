"""The time table compares epoch times only between rows measured on the same machines."""

from dataset_preprocess.machine import cpu_description
from recbole_sdmtmp.experiments.statistics import RowStats
from recbole_sdmtmp.experiments.tables import UNRECORDED, device_line, timing_table


def _run(seconds: float, machine: str | None) -> dict:
    run = {"train_seconds_per_epoch": seconds, "eval_seconds": 0.5, "epochs": 10, "device": "cpu"}
    if machine is not None:
        run["machine"] = machine
    return run


def test_a_ratio_needs_the_same_machine_and_old_cells_say_they_are_unrecorded() -> None:
    rows = [RowStats("SD-MTMP", [_run(2.0, "fast"), _run(2.0, "fast")]),
            RowStats("SASRec", [_run(6.0, "fast")]),
            RowStats("MISSRec", [_run(50.0, None)]),  # a cell from before machines were recorded
            RowStats("GRU4Rec", [_run(3.0, "fast"), _run(9.0, "slow")])]
    table = timing_table(rows)
    assert table[2] == "| SD-MTMP | 2.00 | 0.50 | 10 | A | 1.00 |"
    assert table[3] == "| SASRec | 6.00 | 0.50 | 10 | A | 3.00 |"
    assert table[4] == "| MISSRec | 50.00 | 0.50 | 10 | B | n/a (other machine) |"
    assert table[5] == "| GRU4Rec | 6.00 | 0.50 | 10 | A, C | n/a (other machine) |"
    assert f"A: fast; B: {UNRECORDED}; C: slow" in device_line(rows)


def test_the_machine_names_the_cpu_and_its_cores() -> None:
    description = cpu_description()
    assert description.endswith(" cores") and int(description.split(", ")[-1].split()[0]) >= 1
