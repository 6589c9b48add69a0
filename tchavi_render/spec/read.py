"""Reading the files a spec is made of (the spec, its --var-files) and checking their variables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tchavi_render.errors import Problem
from tchavi_render.spec.fieldtypes import describe, var_name_problem
from tchavi_render.spec.reporter import Reporter
from tchavi_render.spec.yamlpos import MAX_BYTES, YamlDoc, parse_yaml
from tchavi_render.text import did_you_mean

__all__ = ["check_cli_vars", "os_reason", "read_var_file", "read_yaml", "warn_unused_vars"]


def read_yaml(
    path: Path, what: str, fix: str, project_dir: Path, report: Reporter
) -> YamlDoc | None:
    """The parsed `path` (the `what`, e.g. "spec file"), or None with its problems reported;
    `fix` says what to do when the file is missing."""
    try:
        if path.is_symlink() and not path.resolve().is_relative_to(project_dir):
            # The rule media and includes follow: a symlink must not lead out of the
            # project (a spec or var file linked to ~/.env would be read and quoted).
            report.add(
                Problem(
                    f"the {what} is a symlink that leads outside the project directory "
                    "(the spec's folder); copy the file into the project, or pass its "
                    "own path",
                    path,
                )
            )
            return None
        if not path.exists():
            report.add(Problem(f"{what} not found; {fix}", path))
            return None
        if not path.is_file():
            report.add(Problem(f"{what} is not a regular file; {fix}", path))
            return None
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
        report.add(Problem(f"cannot read the {what}: {os_reason(exc)}", path))
        return None
    doc, problems = parse_yaml(data, path)
    for problem in problems:
        report.add(problem)
    return doc


def read_var_file(
    path: Path, project_dir: Path, report: Reporter
) -> tuple[dict[str, Any], YamlDoc | None]:
    """The variables of a --var-file, and its document when it is a mapping (to locate its
    keys in later warnings)."""
    report.files.append(path)
    doc = read_yaml(path, "var file", "check the --var-file path", project_dir, report)
    if doc is None or doc.value is None:
        return {}, None
    if not isinstance(doc.value, dict):
        report.error(
            doc.locate(()),
            f"a var file must be a mapping of variable names to values, got {describe(doc.value)}",
        )
        return {}, None
    for name in doc.value:
        problem = var_name_problem(name)
        if problem:
            report.error(doc.locate((name,), key=True), problem)
    return dict(doc.value), doc


def check_cli_vars(variables: Mapping[str, str], report: Reporter) -> None:
    for name, value in variables.items():
        problem = var_name_problem(name)
        if problem:
            report.add(Problem(f"--var {name}={value}: {problem}"))


def warn_unused_vars(
    used: frozenset[str],
    var_docs: Sequence[YamlDoc],
    variables: Mapping[str, str],
    report: Reporter,
) -> None:
    """A --var or --var-file variable no template reads (`used` are the names they read) is
    most likely a typo: say so (a spec's own `vars:` may hold spares; what is given for one
    run should not)."""
    known = sorted(used - {"ref"})
    for doc in var_docs:
        for name in doc.value:
            if name not in used and not var_name_problem(name):
                report.warn(
                    doc.locate((name,), key=True),
                    f"variable {name!r} is not used by any template; "
                    f"remove it or use it{_hint(name, known)}",
                )
    for name in variables:
        if name not in used and not var_name_problem(name):
            report.add(
                Problem(
                    f"--var {name}: no template uses the variable {name!r}; "
                    f"check its name{_hint(name, known)}",
                    severity="warning",
                )
            )


def os_reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _hint(name: str, known: list[str]) -> str:
    """'. Did you mean 'x'?' (as a sentence after a clause), or ''."""
    close = did_you_mean(name, known).strip()
    return f". {close}" if close else ""
