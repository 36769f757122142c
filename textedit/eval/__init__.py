"""Measuring edits on the public fact-editing benchmarks (TIMED, RoAD), in text space."""

from .benchmark import BenchmarkError, EvalCase, Probe, load_benchmark
from .run import MODES, EvalResult, Evaluator
from .scores import CaseScore, Summary, score_case

__all__ = ["BenchmarkError", "CaseScore", "EvalCase", "EvalResult", "Evaluator", "MODES", "Probe", "Summary",
           "load_benchmark", "score_case"]
