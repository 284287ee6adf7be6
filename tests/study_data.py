"""Finished tuning trials written straight into a study store, as ``tune`` leaves them."""

import optuna
from optuna.trial import TrialState

from recbole_sdmtmp.experiments import fits, tuning
from recbole_sdmtmp.registry import reads_topics


FIT = "f1"  # the topic fit of a model that reads topics (tests patch experiments.fits.topic_fit to it)


def add_trials(results, model, dataset, protocol, configurations, scores, states=None):
    """One trial per (overrides, score); trial 0 is marked as the default. The store is the
    default SQLite file under ``results``; a topic model's trials record the fit ``FIT``."""
    study = tuning.open_study(tuning.storage_url(results), model, dataset, protocol, seed=0)
    for number, (overrides, score) in enumerate(zip(configurations, scores)):
        state = (states or {}).get(number, TrialState.COMPLETE)
        study.add_trial(optuna.trial.create_trial(
            state=state, value=score if state == TrialState.COMPLETE else None,
            intermediate_values={1: score} if state == TrialState.PRUNED else None,
            user_attrs={"overrides": overrides, "defaults": number == 0,
                        "record": {"best_valid_result": {"ndcg@10": score, "hit@10": 2 * score}, "epochs": 3,
                                   **({"topics_fit": FIT} if reads_topics(model) else {})}}))
    return study


def on_fit(monkeypatch, fit=FIT):
    """The datasets' topics are fit ``fit`` (these tests have no topic files)."""
    monkeypatch.setattr(fits, "topic_fit", lambda model, dataset, data_root, *_: fit if reads_topics(model) else None)
