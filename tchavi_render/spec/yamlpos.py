"""YAML with a position for every node: plain values plus path -> line/column tables."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tchavi_render.errors import Problem
from tchavi_render.spec.shot import Location
from tchavi_render.spec.yamlscalar import CORE_TAG, tagged_scalar

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "PathKey",
    "YamlDoc",
    "parse_yaml",
]

MAX_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 1_000_000

PathKey = tuple[str | int, ...]


class _Fatal(Exception):
    """Stops the event walk: the document cannot be read any further."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class YamlDoc:
    """A parsed file: its value, where each node was written, and its source lines."""

    file: Path  # as shown in messages
    value: Any
    values: dict[PathKey, tuple[int, int]]  # path -> (line, column) of the value node
    keys: dict[PathKey, tuple[int, int]]  # path -> (line, column) of the key naming it
    blocks: frozenset[PathKey] = frozenset()  # string values written as | or > blocks
    # path of an alias node -> path of the anchored node; merged key -> its `<<` source
    aliases: dict[PathKey, PathKey] = field(default_factory=dict, repr=False)
    merged: dict[PathKey, PathKey] = field(default_factory=dict, repr=False)
    lines: tuple[str, ...] = field(default=(), repr=False)

    def locate(self, path: PathKey, *, key: bool = False) -> Location:
        """Where `path` was written; walks up to the nearest node that has a position."""
        probe = self._written_at(tuple(path))
        if key and probe in self.keys:
            line, column = self.keys[probe]
            return Location(self.file, line, column)
        while True:
            if probe in self.values:
                line, column = self.values[probe]
                return Location(self.file, line, column)
            if not probe:
                return Location(self.file, 1, 1)
            probe = probe[:-1]

    def _written_at(self, path: PathKey) -> PathKey:
        """Follow aliases and merge keys to the path where the node was actually written."""
        for _ in range(MAX_DEPTH * 4):
            for cut in range(len(path), -1, -1):
                prefix = path[:cut]
                if prefix in self.merged:
                    path = self.merged[prefix] + path[cut:]
                    break
                if cut < len(path) and prefix in self.aliases:
                    path = self.aliases[prefix] + path[cut:]
                    break
            else:
                return path
        return path

    def template_location(self, path: PathKey, template_line: int) -> Location:
        """The file position of line `template_line` (1-based) of the string at `path`."""
        start = self.locate(path)
        path = self._written_at(tuple(path))
        if path not in self.blocks:
            if template_line <= 1:
                return start
            return Location(self.file, start.line + template_line - 1, 1)
        # A block scalar's content starts on the line after its `|` or `>` indicator.
        line = start.line + max(template_line, 1)
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        column = len(text) - len(text.lstrip(" ")) + 1
        return Location(self.file, line, column)


def parse_yaml(text: str | bytes, file: Path) -> tuple[YamlDoc | None, list[Problem]]:
    """Parse one YAML document. Returns the document, or None and the problems found.

    The document is built from parser events (never through PyYAML's recursive composer or
    its constructors), so every limit is ours: size, nesting depth, nodes after expanding
    aliases (an alias bomb is refused before it is expanded), one document per file, string
    keys, no duplicate keys. Scalars follow the YAML 1.2 core schema, as editors do: `yes`,
    `no`, `on` and `16:9` stay strings; `true`, `5`, `0x1f`, `1.5`, `null`, `~` are typed.
    Sequences become tuples, mappings dicts; merge keys (`<<: *x`) are supported.

    Problems that do not stop reading (duplicate or non-string keys) come back with the
    document; anything else (syntax, limits) stops at its first problem.
    """
    if isinstance(text, bytes):
        data = text
        if len(data) > MAX_BYTES:
            return None, [_too_big(file)]
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
            message = f"is not valid UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
            return None, [Problem(message, file, line, column)]
    elif len(text) > MAX_BYTES:
        return None, [_too_big(file)]
    builder = _Builder(file)
    try:
        value = builder.build(_events(text))
    except _Fatal as fatal:
        return None, [Problem(fatal.message, file, fatal.line, fatal.column)]
    except yaml.MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, text, file)]
    except yaml.YAMLError as exc:
        return None, [_reader_problem(exc, text, file)]
    doc = YamlDoc(
        file=file,
        value=value,
        values=dict(builder.values),
        keys=dict(builder.keys),
        blocks=frozenset(builder.blocks),
        aliases=builder.aliases,
        merged=builder.merged,
        lines=tuple(text.splitlines()),
    )
    return doc, builder.problems


def _too_big(file: Path) -> Problem:
    limit = MAX_BYTES // (1024 * 1024)
    return Problem(f"is larger than {limit} MiB; split it or generate shots with for_each", file)


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, file: Path) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    if mark is not None and _indented_with_tab(text, mark.line, mark.column):
        message = "tabs are not allowed for indentation; use spaces"
        return Problem(message, file, mark.line + 1, mark.column + 1)
    problem = exc.problem or "invalid YAML"
    message = f"YAML syntax error: {problem}"
    if exc.context and exc.context_mark is not None:
        message += f" ({exc.context} started at line {exc.context_mark.line + 1})"
    if mark is None:
        return Problem(message, file)
    return Problem(message, file, mark.line + 1, mark.column + 1)


def _indented_with_tab(text: str, line: int, column: int) -> bool:
    """Whether the 0-based (line, column) of `text` is a tab among the line's indentation."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return False
    indent = lines[line][: len(lines[line]) - len(lines[line].lstrip(" \t"))]
    return column < len(indent) and indent[column] == "\t"


def _reader_problem(exc: yaml.YAMLError, text: str, file: Path) -> Problem:
    position = getattr(exc, "position", None)
    reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
    message = f"YAML syntax error: {reason}"
    if not isinstance(position, int) or not 0 <= position <= len(text):
        return Problem(message, file)
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return Problem(message, file, line, column)


def _events(text: str) -> Iterator[yaml.Event]:
    """Parser events, from libyaml when available (fast), else from pure-Python PyYAML."""
    parser: Any
    if getattr(yaml, "__with_libyaml__", False):
        from yaml._yaml import CParser

        parser = CParser(text)
    else:
        parser = _PyParser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


class _PyParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)


@dataclass
class _Anchor:
    value: Any
    size: int
    path: PathKey  # where the anchored node was written


@dataclass
class _Container:
    kind: str  # "map" or "seq"
    path: PathKey
    line: int
    column: int
    anchor: str | None
    items: list[Any] = field(default_factory=list)
    mapping: dict[str, Any] = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)
    merges: list[tuple[Any, int, int]] = field(default_factory=list)
    size: int = 1
    # the key waiting for its value; None when the next scalar is a key
    pending_key: str | None = None
    skip_value: bool = False  # the pending key was refused; build its value and drop it
    merge_value: bool = False  # the pending key is `<<`
    expecting_key: bool = True


class _Builder:
    """Turns a stream of parser events into values and position tables."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.values: list[tuple[PathKey, tuple[int, int]]] = []
        self.keys: list[tuple[PathKey, tuple[int, int]]] = []
        self.blocks: set[PathKey] = set()
        self.problems: list[Problem] = []
        self.anchors: dict[str, _Anchor] = {}
        self.aliases: dict[PathKey, PathKey] = {}
        self.merged: dict[PathKey, PathKey] = {}
        self.nodes = 0

    def build(self, events: Iterator[yaml.Event]) -> Any:
        stack: list[_Container] = []
        result: Any = None
        documents = 0
        for event in events:
            mark: Any = event.start_mark
            line, column = mark.line + 1, mark.column + 1
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Fatal(
                        "holds more than one YAML document (a second '---'); "
                        "keep one document per file",
                        line,
                        column,
                    )
                continue
            if isinstance(event, yaml.StreamStartEvent | yaml.StreamEndEvent):
                continue
            if isinstance(event, yaml.DocumentEndEvent):
                continue
            if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                self._check_collection_tag(event, line, column)
                if len(stack) >= MAX_DEPTH:
                    raise _Fatal(
                        f"nests deeper than {MAX_DEPTH} levels; flatten the structure",
                        line,
                        column,
                    )
                path = self._child_path(stack, line, column, collection=True)
                self._count(1, line, column)
                stack.append(
                    _Container(
                        kind="map" if isinstance(event, yaml.MappingStartEvent) else "seq",
                        path=path,
                        line=line,
                        column=column,
                        anchor=event.anchor,
                    )
                )
                self.values.append((path, (line, column)))
                continue
            if isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                done = stack.pop()
                value = self._finish(done)
                if done.anchor is not None:
                    self.anchors[done.anchor] = _Anchor(value, done.size, done.path)
                if stack:
                    self._attach(stack[-1], value, done.size, done.line, done.column)
                else:
                    result = value
                continue
            if isinstance(event, yaml.AliasEvent):
                result = self._alias(stack, event, line, column, result)
                continue
            if isinstance(event, yaml.ScalarEvent):
                result = self._scalar(stack, event, line, column, result)
                continue
        return result

    # -- pieces of the walk ------------------------------------------------------------

    def _count(self, size: int, line: int, column: int) -> None:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise _Fatal(
                f"expands to more than {MAX_NODES} nodes (aliases included); "
                "this looks like an alias bomb or a generated file: shrink it",
                line,
                column,
            )

    def _child_path(
        self, stack: list[_Container], line: int, column: int, *, collection: bool
    ) -> PathKey:
        if not stack:
            return ()
        parent = stack[-1]
        if parent.kind == "seq":
            return (*parent.path, len(parent.items))
        if parent.expecting_key:
            if collection:
                raise _Fatal(
                    "a mapping key must be a plain string, not a list or a mapping",
                    line,
                    column,
                )
            return parent.path
        assert parent.pending_key is not None
        return (*parent.path, parent.pending_key)

    def _check_collection_tag(self, event: Any, line: int, column: int) -> None:
        tag = event.tag
        allowed = (None, "!", CORE_TAG + "map", CORE_TAG + "seq")
        if tag not in allowed:
            raise _Fatal(f"unsupported YAML tag {tag!r}; remove it", line, column)

    def _scalar(
        self, stack: list[_Container], event: Any, line: int, column: int, result: Any
    ) -> Any:
        value = self._scalar_value(event, line, column)
        self._count(1, line, column)
        if event.anchor is not None and not (stack and stack[-1].expecting_key):
            path = self._child_path(stack, line, column, collection=False)
            self.anchors[event.anchor] = _Anchor(value, 1, path)
        if not stack:
            self.values.append(((), (line, column)))
            if event.style in ("|", ">"):
                self.blocks.add(())
            return value
        parent = stack[-1]
        if parent.kind == "map" and parent.expecting_key:
            merge = value == "<<" and not event.style and event.tag is None
            self._take_key(parent, value, merge, line, column)
            return result
        path = self._child_path(stack, line, column, collection=False)
        self.values.append((path, (line, column)))
        if event.style in ("|", ">"):
            self.blocks.add(path)
        self._attach(parent, value, 1, line, column)
        return result

    def _scalar_value(self, event: Any, line: int, column: int) -> Any:
        try:
            # '' from libyaml, None from pure Python: no style is a plain scalar
            return tagged_scalar(event.tag, event.value, plain=not event.style)
        except ValueError as exc:
            raise _Fatal(str(exc), line, column) from None

    def _take_key(self, parent: _Container, key: Any, merge: bool, line: int, column: int) -> None:
        parent.expecting_key = False
        parent.skip_value = False
        parent.merge_value = False
        if merge:
            parent.merge_value = True
            parent.pending_key = "<<"
            return
        if not isinstance(key, str):
            self.problems.append(
                Problem(
                    f"mapping key {key!r} must be a string; quote it",
                    self.file,
                    line,
                    column,
                )
            )
            parent.skip_value = True
            parent.pending_key = "\x00refused"
            return
        if key in parent.mapping or key in parent.key_lines:
            first = parent.key_lines.get(key, parent.line)
            self.problems.append(
                Problem(
                    f"duplicate key {key!r} (first written at line {first}); keep one of them",
                    self.file,
                    line,
                    column,
                )
            )
            parent.skip_value = True
            parent.pending_key = "\x00duplicate"
            return
        parent.pending_key = key
        parent.key_lines[key] = line
        self.keys.append(((*parent.path, key), (line, column)))

    def _alias(
        self, stack: list[_Container], event: Any, line: int, column: int, result: Any
    ) -> Any:
        anchor = self.anchors.get(event.anchor)
        if anchor is None:
            raise _Fatal(
                f"alias *{event.anchor} refers to no anchor defined before it "
                "(or to the node that contains it)",
                line,
                column,
            )
        if stack and stack[-1].kind == "map" and stack[-1].expecting_key:
            if not isinstance(anchor.value, str):
                raise _Fatal("a mapping key must be a plain string", line, column)
            self._take_key(stack[-1], anchor.value, False, line, column)
            return result
        self._count(anchor.size, line, column)
        path = self._child_path(stack, line, column, collection=False)
        # The alias node is located at *x; what lies inside it, where the anchor wrote it.
        self.values.append((path, (line, column)))
        self.aliases[path] = anchor.path
        if not stack:
            return anchor.value
        self._attach(stack[-1], anchor.value, anchor.size, line, column)
        return result

    def _attach(self, parent: _Container, value: Any, size: int, line: int, column: int) -> None:
        parent.size += size
        if parent.kind == "seq":
            parent.items.append(value)
            return
        key = parent.pending_key
        parent.expecting_key = True
        parent.pending_key = None
        if parent.merge_value:
            parent.merges.append((value, line, column))
            return
        if parent.skip_value or key is None:
            # Drop the refused entry's positions so they cannot shadow the kept one.
            return
        parent.mapping[key] = value

    def _finish(self, done: _Container) -> Any:
        if done.kind == "seq":
            return tuple(done.items)
        for merged, line, column in done.merges:
            many = isinstance(merged, tuple)
            for index, source in enumerate(merged if many else (merged,)):
                if not isinstance(source, dict):
                    self.problems.append(
                        Problem(
                            "a merge key '<<' takes a mapping or a list of mappings",
                            self.file,
                            line,
                            column,
                        )
                    )
                    continue
                origin = (*done.path, "<<", index) if many else (*done.path, "<<")
                for key, value in source.items():
                    if key not in done.mapping:
                        done.mapping[key] = value
                        self.merged[(*done.path, key)] = (*origin, key)
        return done.mapping
