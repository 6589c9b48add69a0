"""A spec, its files and its lock as they were at a git revision, read from git, no checkout.

The files of the spec's folder (its includes, prompt files and media) and its var files are
copied out of the revision's tree (`git ls-tree` + `git cat-file --batch`, so no
`.gitattributes` filter or substitution changes a byte) into a temporary folder, and loaded
there by the one spec loader and the one lock reader. Every problem found at a revision is
shown as `REV:path:line:col`, git's own way of naming a file at a revision.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tchavi_render.engine.lock import Lockfile, lock_path_for
from tchavi_render.engine.lockread import read_lock
from tchavi_render.errors import LockfileError, Problem, RevisionError, SpecError
from tchavi_render.spec import load_spec
from tchavi_render.spec.shot import LoadedSpec

__all__ = ["Repository", "Revision", "Side", "read_side"]

# Where the default branch is looked for, in order: the remote's HEAD, then the usual names.
DEFAULT_BRANCHES = ("origin/HEAD", "main", "master")


@dataclass(frozen=True)
class Revision:
    """A commit as the user named it; `commit` None is the working tree."""

    name: str
    commit: str | None = None

    @property
    def label(self) -> str:
        if self.commit is None:
            return "the working tree"
        short = self.commit[:12]
        return short if self.name == self.commit else f"{self.name} ({short})"

    @property
    def prefix(self) -> str:
        """How a file at this revision is named in messages: `REV:` (git's notation)."""
        return "" if self.commit is None else f"{self.name}:"


WORKING_TREE = Revision("working tree")


@dataclass(frozen=True)
class Side:
    """One side of a diff: the spec and its lock at one revision."""

    revision: Revision
    spec_path: str  # POSIX, relative to the repository's top
    spec: LoadedSpec
    lock: Lockfile


class Repository:
    """The git repository holding a spec; every git command runs through `git()`."""

    def __init__(self, top: Path) -> None:
        self.top = top

    @classmethod
    def around(cls, path: Path) -> Repository:
        """The repository `path` (a file or folder, existing or not) is in."""
        folder = path.absolute().parent if not path.is_dir() else path.absolute()
        while not folder.is_dir():
            folder = folder.parent
        done = _run_git(folder, "rev-parse", "--show-toplevel")
        if done.returncode != 0:
            raise RevisionError(
                f"{folder} is not inside a git repository ({_first_line(done.stderr)}); "
                "diff reads the spec at git revisions: run it in a clone"
            )
        return cls(Path(os.fsdecode(done.stdout.strip())).resolve())

    def git(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return _run_git(self.top, *args, stdin=stdin)

    def relpath(self, path: Path, what: str) -> str:
        """`path` as git names it in a tree (POSIX, relative to the top)."""
        absolute = path.absolute()
        folder = absolute.parent.resolve() if absolute.parent.exists() else absolute.parent
        try:
            return (folder / absolute.name).relative_to(self.top).as_posix()
        except ValueError:
            raise RevisionError(
                f"the {what} {path} is outside the git repository {self.top}; "
                "only files in git can be read at a revision"
            ) from None

    def revision(self, name: str) -> Revision:
        done = self.git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{name}^{{commit}}"
        )
        if done.returncode != 0 or not done.stdout.strip():
            raise RevisionError(
                f"unknown revision {name!r}: it names no commit in {self.top}; check the name "
                "(`git log --oneline`, `git branch -a`), or fetch it first"
            )
        return Revision(name, done.stdout.decode().strip())

    def default_base(self, head: Revision) -> Revision:
        """The merge base of `head` (HEAD for the working tree) with the default branch."""
        tip = head.commit or self._head_commit()
        tried = []
        for branch in DEFAULT_BRANCHES:
            found = self.git("rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}")
            if found.returncode != 0:
                tried.append(branch)
                continue
            base = self.git("merge-base", found.stdout.decode().strip(), tip)
            if base.returncode != 0:
                raise RevisionError(
                    f"{branch} and {head.label} have no commit in common (in a shallow clone, "
                    "fetch the history: `git fetch --unshallow`, or `fetch-depth: 0` in "
                    "actions/checkout); or pass BASE explicitly (`tchavi-render diff BASE`)"
                )
            commit = base.stdout.decode().strip()
            return Revision(f"merge base with {_branch_name(self, branch)}", commit)
        raise RevisionError(
            f"no default branch to compare with: none of {', '.join(tried)} exists in "
            f"{self.top}; pass BASE explicitly (`tchavi-render diff BASE`), or fetch the "
            "default branch"
        )

    def _head_commit(self) -> str:
        done = self.git("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        if done.returncode != 0:
            raise RevisionError(
                f"the repository {self.top} has no commit yet; commit the spec, or pass "
                "BASE and HEAD explicitly"
            )
        return done.stdout.decode().strip()

    def name_at(self, base: Revision, head: Revision, relpath: str) -> str:
        """The name the file `relpath` of `head` had at `base`: its own, or the one git
        sees it renamed from (when it does not exist at `base` under its own)."""
        if self.has_file(base, relpath):
            return relpath
        return self.renamed_from(base, head, relpath) or relpath

    def renamed_from(self, base: Revision, head: Revision, relpath: str) -> str | None:
        """The path `relpath` (at `head`) had at `base`, when git sees a rename between them."""
        assert base.commit is not None
        tips = [base.commit] if head.commit is None else [base.commit, head.commit]
        done = self.git("diff", "-M", "--name-status", "-z", *tips, "--")
        fields = done.stdout.split(b"\0")
        at = 0
        while at < len(fields) - 1:
            status = fields[at].decode()
            if status.startswith(("R", "C")):
                old, new = os.fsdecode(fields[at + 1]), os.fsdecode(fields[at + 2])
                if new == relpath and status.startswith("R"):
                    return old
                at += 3
            else:
                at += 2
        return None

    def has_file(self, revision: Revision, relpath: str) -> bool:
        assert revision.commit is not None
        return self.git("cat-file", "-e", f"{revision.commit}:{relpath}").returncode == 0

    def extract(self, revision: Revision, paths: Sequence[str], into: Path) -> None:
        """Write the files under `paths` at `revision` below `into` (symlinks as symlinks;
        submodules left out), byte for byte."""
        assert revision.commit is not None
        listed = self.git("ls-tree", "-r", "-z", "--full-tree", revision.commit, "--", *paths)
        if listed.returncode != 0:
            raise RevisionError(
                f"cannot list the files of {revision.label}: {_first_line(listed.stderr)}"
            )
        entries = []
        for record in listed.stdout.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            mode, kind, sha = meta.decode().split()
            if kind == "blob":
                entries.append((mode, sha, os.fsdecode(name)))
        if not entries:
            return
        batch = self.git(
            "cat-file", "--batch", stdin="".join(f"{e[1]}\n" for e in entries).encode()
        )
        if batch.returncode != 0:
            raise RevisionError(
                f"cannot read the files of {revision.label}: {_first_line(batch.stderr)}"
            )
        data, at = batch.stdout, 0
        for mode, _, path in entries:
            header_end = data.index(b"\n", at)
            header = data[at:header_end].split()
            if len(header) != 3:  # "<sha> missing": a partial or shallow clone
                raise RevisionError(
                    f"{revision.prefix}{path}: git does not have this file's content "
                    f"({header[-1].decode(errors='replace')}); fetch {revision.name} fully "
                    "(`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout)"
                )
            size = int(header[2])
            body = data[header_end + 1 : header_end + 1 + size]
            at = header_end + 1 + size + 1
            parts = PurePosixPath(path).parts
            if ".." in parts or PurePosixPath(path).is_absolute():
                continue  # git never writes such a path; a tree that has one is not trusted
            try:
                _write(into.joinpath(*parts), body, link=mode == "120000")
            except OSError as exc:
                raise RevisionError(
                    f"{revision.prefix}{path}: cannot copy it out of git: {exc.strerror or exc}"
                ) from None


def _write(target: Path, body: bytes, *, link: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        # Kept as a link: the loader refuses one that leads out of the project, as it does
        # in a checkout.
        os.symlink(os.fsdecode(body), target)
    else:
        target.write_bytes(body)


@contextlib.contextmanager
def read_side(
    repo: Repository,
    revision: Revision,
    spec: Path,
    *,
    variables: Mapping[str, str],
    var_files: Sequence[Path],
    renamed_from: str | None = None,
) -> Iterator[Side]:
    """The spec and lock at `revision` (the working tree when its commit is None); the spec
    is read at `renamed_from` (a path relative to the top) when it had that name there.

    The loaded spec's local media point into a temporary folder that is removed when the
    block ends: use the side inside it.
    """
    spec_rel = renamed_from or repo.relpath(spec, "spec")
    if revision.commit is None:
        loaded = load_spec(spec, variables=variables, var_files=var_files)
        yield Side(revision, spec_rel, loaded, read_lock(lock_path_for(spec)))
        return
    var_rels = [repo.relpath(p, "var file") for p in var_files]
    if not repo.has_file(revision, spec_rel):
        raise RevisionError(
            f"{revision.prefix}{spec_rel}: the spec does not exist at {revision.label}; "
            "if it was added since, pass a BASE where it exists; if it was renamed, commit "
            "the rename (`git mv`) so that git can follow it"
        )
    folder = str(PurePosixPath(spec_rel).parent)
    root = Path(tempfile.mkdtemp(prefix="tchavi-render-rev-")).resolve()
    try:
        wanted = [folder, *(v for v in var_rels if repo.has_file(revision, v))]
        repo.extract(revision, wanted, root)
        at = root / spec_rel
        try:
            loaded = load_spec(at, variables=variables, var_files=[root / v for v in var_rels])
        except SpecError as exc:
            raise SpecError(
                [_relabel(p, root, revision) for p in exc.problems],
                [_relabel(p, root, revision) for p in exc.warnings],
            ) from None
        try:
            lock = read_lock(lock_path_for(at))
        except LockfileError as exc:
            raise LockfileError(_in_revision(str(exc), root, revision)) from None
        yield Side(revision, spec_rel, loaded, lock)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _relabel(problem: Problem, root: Path, revision: Revision) -> Problem:
    """A problem found in the extracted copy, naming the file as `REV:path`."""
    file = problem.file
    if file is not None:
        with contextlib.suppress(ValueError):
            file = Path(revision.prefix + file.absolute().relative_to(root).as_posix())
    return Problem(
        _in_revision(problem.message, root, revision),
        file,
        problem.line,
        problem.column,
        problem.severity,
    )


def _in_revision(text: str, root: Path, revision: Revision) -> str:
    """`text` with the temporary folder's paths (absolute, or relative to the working
    directory as some messages show them) named as files of the revision."""
    forms = [str(root)]  # the absolute form first: the relative one may be inside it
    with contextlib.suppress(ValueError):
        forms.append(os.path.relpath(root))
    for form in forms:
        text = text.replace(f"{form}{os.sep}", revision.prefix).replace(form, revision.label)
    return text


def _branch_name(repo: Repository, branch: str) -> str:
    if branch != "origin/HEAD":
        return branch
    done = repo.git("rev-parse", "--abbrev-ref", "origin/HEAD")
    return done.stdout.decode().strip() or branch


def _first_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[0].removeprefix("fatal: ") if lines else "git failed"


def _run_git(
    cwd: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    if shutil.which("git") is None:
        raise RevisionError("git is not installed (or not on PATH); diff reads specs from git")
    # Messages are parsed only for their first line; no pager, no prompt for credentials.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    return subprocess.run(
        ["git", "-C", str(cwd), *args],
        input=stdin,
        capture_output=True,
        env=env,
        check=False,
    )
