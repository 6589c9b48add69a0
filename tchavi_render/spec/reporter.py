"""The problems one load of a spec finds: errors and warnings, each once, sorted by place."""

from __future__ import annotations

from pathlib import Path

from tchavi_render.errors import Problem, SpecError
from tchavi_render.spec.locate import problem_at
from tchavi_render.spec.shot import Location

__all__ = ["Reporter"]


class Reporter:
    """Collects the located Problems of every stage; `failure()` lists them all at once.

    `files` are the files in the order they were read (the spec, then each --var-file):
    problems come out file by file, then by line and column.
    """

    def __init__(self, spec_file: Path) -> None:
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.files: list[Path] = [spec_file]
        self._seen: set[tuple[str, Path | None, int | None, int | None, str]] = set()

    def add(self, problem: Problem) -> None:
        key = (problem.severity, problem.file, problem.line, problem.column, problem.message)
        if key in self._seen:
            return
        self._seen.add(key)
        (self.warnings if problem.severity == "warning" else self.errors).append(problem)

    def error(self, location: Location, message: str) -> None:
        self.add(problem_at(location, message))

    def warn(self, location: Location, message: str) -> None:
        self.add(problem_at(location, message, "warning"))

    def sorted(self, problems: list[Problem]) -> list[Problem]:
        rank = {f: i for i, f in enumerate(self.files)}

        def key(p: Problem) -> tuple[int, int, int]:
            if p.file is None:
                return (-1, 0, 0)
            return (rank.get(p.file, len(rank)), p.line or 0, p.column or 0)

        return sorted(problems, key=key)

    def failure(self) -> SpecError:
        return SpecError(self.sorted(self.errors), self.sorted(self.warnings))
