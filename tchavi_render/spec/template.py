"""The one Jinja environment that renders spec templates: sandboxed, strict and bounded."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import marshal
import re
import string
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import CodeType
from typing import Any

from jinja2 import (
    BaseLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
    pass_eval_context,
)
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import Environment
from jinja2.exceptions import SecurityError
from jinja2.filters import do_join, do_replace
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tchavi_render.atomic import atomic_write_bytes

__all__ = [
    "CODE_CACHE_VERSION",
    "INLINE",
    "MAX_CALL_DEPTH",
    "MAX_TEXT",
    "FieldTemplates",
    "ProjectLoader",
    "RefError",
    "SpecEnvironment",
    "TemplateFailure",
    "is_template",
]

MAX_TEXT = 100_000
# Bump when SpecEnvironment changes the code it compiles (the code cache keys on it).
CODE_CACHE_VERSION = 1
MAX_CALL_DEPTH = 50
MAX_INT_BITS = 4096
MAX_FORMAT_WIDTH = 1000
INLINE = "<template>"  # Jinja's file name for a template compiled from a string
_REMOVED_FILTERS = ("center", "format", "indent", "wordwrap", "random", "urlize", "xmlattr")
_PRINTF = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


def is_template(value: str) -> bool:
    """True when the string holds Jinja syntax and must be rendered."""
    return "{{" in value or "{%" in value or "{#" in value


class TemplateFailure(Exception):
    """A template could not be rendered. `file` is None for the string being rendered."""

    def __init__(self, message: str, file: Path | None, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line


class RefError(Exception):
    """`ref()` was asked for something this shot does not reference."""


def _sized(value: object) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _too_long(what: str) -> SecurityError:
    return SecurityError(f"{what} would make more than {MAX_TEXT} characters")


def _check_printf(fmt: str) -> None:
    for match in _PRINTF.finditer(fmt):
        for part in match.groups():
            if part == "*" or (part is not None and int(part) > MAX_FORMAT_WIDTH):
                raise SecurityError(f"format widths above {MAX_FORMAT_WIDTH} are not allowed")


def _check_format_spec(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise SecurityError(f"invalid format string: {exc}") from None
    for _, _, spec, _ in fields:
        if spec and (
            "{" in spec or any(int(n) > MAX_FORMAT_WIDTH for n in re.findall(r"\d+", spec))
        ):
            raise SecurityError(f"format widths above {MAX_FORMAT_WIDTH} are not allowed")


@pass_eval_context
def _replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: int | None = None) -> Any:
    text, old_s, new_s = str(value), str(old), str(new)
    hits = len(text) + 1 if old_s == "" else text.count(old_s) if old_s else 0
    if count is not None:
        hits = min(hits, max(count, 0))
    if len(text) + hits * max(len(new_s) - len(old_s), 0) > MAX_TEXT:
        raise _too_long("replace")
    return do_replace(eval_ctx, value, old, new, count)


@pass_eval_context
def _join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> Any:
    items = list(value)
    if len(str(d)) * max(len(items) - 1, 0) + sum(len(str(i)) for i in items) > MAX_TEXT:
        raise _too_long("join")
    return do_join(eval_ctx, items, d, attribute)


class _CodeGenerator(CodeGenerator):
    """Compiles `a ~ b` through the environment so its result is bounded too.

    CodeGenerator is Jinja's internal API (the sandbox's public hooks see binary operators,
    not `~`), so pyproject.toml allows only the Jinja versions this is tested with.
    """

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.write("str(")
            self.visit(arg, frame)
            self.write("), ")
        self.write("))")


class SpecEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox every spec template runs in. The policy, in one place:

    - Immutable sandbox: no `_private` or internal attributes (`__class__`, `__globals__`,
      `gi_frame`...), no mutation of the lists and dicts that shots share.
    - `StrictUndefined`: an undefined variable is an error, never an empty string.
    - No globals (`range`, `lipsum`, `cycler`, `joiner`, `dict`, `namespace` are gone), no
      `random` (renders must be deterministic), no width-taking filters that build huge
      strings from tiny inputs (`center`, `format`, `indent`, `wordwrap`).
    - Bounded growth: `*`, `**`, `+`, `%`, `~`, `replace`, `join`, `str.format` and calls
      refuse results past MAX_TEXT characters (or huge numbers); calls nest at most
      MAX_CALL_DEPTH deep; a rendered field is at most MAX_TEXT characters (FieldTemplates).
    - Includes and imports come from the project directory only (ProjectLoader).
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _CodeGenerator

    def __init__(self, loader: BaseLoader | None = None) -> None:
        super().__init__(
            loader=loader,
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.globals.clear()
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.filters["replace"] = _replace
        self.filters["join"] = _join
        self._depth = 0

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        out: list[str] = []
        size = 0
        for part in parts:
            size += len(part)
            if size > MAX_TEXT:
                raise _too_long("this text")
            out.append(part)
        return "".join(out)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and right > 0
                and max(left.bit_length(), 1) * right > MAX_INT_BITS
            ):
                raise SecurityError(f"{left} ** {right} is too large")
        elif operator_ == "*":
            count = right if isinstance(right, int) else left if isinstance(left, int) else None
            seq = left if isinstance(right, int) else right
            if count is not None and _sized(seq) and _sized(seq) * count > MAX_TEXT:
                raise _too_long("repeating this")
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > MAX_INT_BITS
            ):
                raise SecurityError("this multiplication is too large")
        elif operator_ == "+":
            if _sized(left) + _sized(right) > MAX_TEXT:
                raise _too_long("this concatenation")
        elif operator_ == "%" and isinstance(left, str):
            _check_printf(left)
        return self.binop_table[operator_](left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format_spec(fmt)
            out = wrapped(*args, **kwargs)
            if len(out) > MAX_TEXT:
                raise _too_long("format")
            return out

        return checked

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        for arg in (*args, *kwargs.values()):
            if _sized(arg) > MAX_TEXT:
                raise _too_long("an argument")
        if __self._depth >= MAX_CALL_DEPTH:
            raise SecurityError(f"calls nest deeper than {MAX_CALL_DEPTH} (runaway recursion?)")
        __self._depth += 1
        try:
            return super().call(__context, __obj, *args, **kwargs)
        finally:
            __self._depth -= 1


class ProjectLoader(BaseLoader):
    """Loads `{% include %}` / `{% import %}` files from inside the project directory only.

    Names are relative to the project directory (the spec's folder). Every file read is
    remembered in `loaded` (resolved path -> the path shown in messages), and in `named`
    as named (before symlinks are followed).
    """

    def __init__(self, project_dir: Path, display_dir: Path) -> None:
        self.project_dir = project_dir.resolve()
        self.display_dir = display_dir
        self.loaded: dict[Path, Path] = {}
        self.named: dict[Path, None] = {}

    @property
    def shown_dir(self) -> str:
        """The project directory as messages name it: as the user gave it, and never as
        `.` (a spec in the current directory), which names nothing a reader can see."""
        if self.display_dir.parts:
            return f"{self.display_dir.as_posix()}/"
        return f"{self.project_dir.name}/ (the current directory)"

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        name = template.replace("\\", "/")
        if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            raise TemplateNotFound(
                template,
                f"cannot include {template!r}: absolute paths are not allowed; "
                "use a path relative to the spec's directory",
            )
        target = (self.project_dir / name).resolve()
        if not target.is_relative_to(self.project_dir):
            raise TemplateNotFound(
                template,
                f"cannot include {template!r}: it is outside the project directory "
                f"{self.shown_dir}; keep templates next to the spec",
            )
        if not target.is_file():
            raise TemplateNotFound(
                template,
                f"cannot include {template!r}: no such file in the project directory",
            )
        try:
            source = target.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateNotFound(template, f"cannot read {template!r}: {exc}") from None
        if len(source) > MAX_TEXT * 10:
            raise TemplateNotFound(template, f"cannot include {template!r}: it is too large")
        display = self.display_dir / target.relative_to(self.project_dir)
        self.loaded[target] = display
        self.named.setdefault(self.project_dir / name)
        return source, str(display), lambda: True


class FieldTemplates:
    """Renders field templates and for_each expressions for one load of a spec.

    With `code_cache`, compiled templates are kept there (like Jinja's bytecode cache:
    named by a digest of the source, Jinja, Python and CODE_CACHE_VERSION; checked against
    a checksum before use; written via temp file and rename), so that a large unchanged
    spec is not compiled again on every plan. The sandbox acts at run time, so cached code
    is exactly as confined as fresh code. The cache dir is trusted like the render cache.
    """

    def __init__(
        self, project_dir: Path, display_dir: Path, code_cache: Path | None = None
    ) -> None:
        self.loader = ProjectLoader(project_dir, display_dir)
        self.env = SpecEnvironment(self.loader)
        self.code_cache = code_cache
        self._templates: dict[str, Template | TemplateFailure] = {}
        self._expressions: dict[str, Any] = {}

    def render(self, source: str, context: Mapping[str, Any]) -> str:
        """The rendered text of `source`; raises TemplateFailure."""
        template = self._compile(source)
        size = 0
        out: list[str] = []
        try:
            for chunk in template.generate(dict(context)):
                size += len(chunk)
                if size > MAX_TEXT:
                    raise _too_long("the rendered text")
                out.append(chunk)
        except Exception as exc:
            # Templates are user code: whatever they raise is the user's to fix.
            raise self._failure(exc, context) from None
        return "".join(out)

    def evaluate(self, expression: str, context: Mapping[str, Any]) -> Any:
        """The value of one `{{ expression }}`; raises TemplateFailure."""
        inner = expression.strip()[2:-2].strip()
        compiled = self._expressions.get(inner)
        if compiled is None:
            try:
                compiled = self.env.compile_expression(inner, undefined_to_none=False)
            except TemplateSyntaxError as exc:
                raise TemplateFailure(f"template syntax error: {exc.message}", None, 1) from None
            self._expressions[inner] = compiled
        try:
            value = compiled(**context)
            if isinstance(value, StrictUndefined):
                str(value)  # raises the UndefinedError with its message
        except Exception as exc:
            raise self._failure(exc, context) from None
        return value

    def names_used(self) -> frozenset[str]:
        """Every variable name the templates rendered so far (and the files they include)
        read: the undeclared names of each, as Jinja's `meta` finds them."""
        sources = [s for s, t in self._templates.items() if not isinstance(t, TemplateFailure)]
        sources += [f"{{{{ {inner} }}}}" for inner in self._expressions]
        for path in self.loader.loaded:
            with contextlib.suppress(OSError, UnicodeDecodeError):
                sources.append(path.read_text(encoding="utf-8"))
        names: set[str] = set()
        for source in sources:
            with contextlib.suppress(TemplateSyntaxError):
                names |= meta.find_undeclared_variables(self.env.parse(source))
        return frozenset(names)

    def _compile(self, source: str) -> Template:
        cached = self._templates.get(source)
        if cached is None:
            try:
                code = self._code(source)
                cached = self.env.template_class.from_code(
                    self.env, code, self.env.make_globals(None)
                )
            except TemplateSyntaxError as exc:
                cached = self._syntax_failure(exc)
            except (RecursionError, MemoryError):
                cached = TemplateFailure("template is nested too deeply to compile", None, 1)
            self._templates[source] = cached
        if isinstance(cached, TemplateFailure):
            raise cached
        return cached

    def _code(self, source: str) -> CodeType:
        """The compiled code of a template, from the code cache when it holds it."""
        if self.code_cache is None:
            return self.env.compile(source)
        import jinja2

        name = hashlib.sha256(
            f"{CODE_CACHE_VERSION}\0{jinja2.__version__}\0{sys.version}\0{source}".encode()
        ).hexdigest()
        path = self.code_cache / name[:2] / f"{name}.code"
        try:
            data = path.read_bytes()
            if data[:32] == hashlib.sha256(data[32:]).digest():
                code = marshal.loads(data[32:])
                if isinstance(code, CodeType):
                    return code
        except (OSError, ValueError, EOFError, TypeError):
            pass  # absent or damaged: compile it again
        code = self.env.compile(source)
        payload = marshal.dumps(code)
        with contextlib.suppress(OSError):
            atomic_write_bytes(path, hashlib.sha256(payload).digest() + payload)
        return code

    def _syntax_failure(self, exc: TemplateSyntaxError) -> TemplateFailure:
        file = None if exc.filename in (None, INLINE) else Path(exc.filename or "")
        return TemplateFailure(f"template syntax error: {exc.message}", file, exc.lineno)

    def _failure(self, exc: BaseException, context: Mapping[str, Any]) -> TemplateFailure:
        if isinstance(exc, TemplateSyntaxError):
            # Raised while loading an included file: it carries that file's line.
            return self._syntax_failure(exc)
        file: Path | None = None
        line: int | None = None
        tb = exc.__traceback__
        known = {str(p) for p in self.loader.loaded.values()}
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            if name == INLINE:
                file, line = None, tb.tb_lineno
            elif name in known:
                file, line = Path(name), tb.tb_lineno
            tb = tb.tb_next
        return TemplateFailure(_message(exc, context), file, line)


def _message(exc: BaseException, context: Mapping[str, Any]) -> str:
    if isinstance(exc, UndefinedError):
        text = str(exc.message or exc)
        match = _UNDEFINED.match(text)
        if match:
            name = match.group(1)
            known = sorted(k for k in context if k != "ref")
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            return (
                f"undefined variable {name!r}.{hint} Define it under vars:, "
                f"in a --var-file, or with --var {name}=..."
            )
        return f"template error: {text}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, TemplateNotFound):
        return str(exc.message or exc)
    if isinstance(exc, RefError):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "template recursion is too deep"
    if isinstance(exc, MemoryError):
        return "template needs too much memory"
    return f"template error: {type(exc).__name__}: {exc}"
