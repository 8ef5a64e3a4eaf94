"""Hyperparameter studies on Optuna: a client of the api, like the CLI (see :mod:`trainctl.tune.study`)."""

from trainctl.tune.study import StudyResult, TrialRow, load_study_result, run_study

__all__ = ["StudyResult", "TrialRow", "load_study_result", "run_study"]
