"""Grids of ordinary runs: study files (spec), a resumable runner, statistics and a report."""

from .spec import Cell, Study, StudyError, load_study

__all__ = ["Cell", "Study", "StudyError", "load_study"]
