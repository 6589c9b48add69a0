"""How `diff` looks: text, markdown (the pull-request comment) and JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tchavi_render.cli.output import md_escape
from tchavi_render.engine.diff import Change, Render, ShotDiff, SpecDiff
from tchavi_render.text import credits

if TYPE_CHECKING:
    from tchavi_render.engine.revisions import Side

__all__ = ["DIFF_MARKER", "diff_json", "diff_markdown", "diff_text"]

# The hidden line that lets CI find its own pull-request comment and update it in place.
DIFF_MARKER = "<!-- tchavi-render-diff -->"
DIFF_SYMBOL = {
    Change.ADDED: "+",
    Change.REMOVED: "-",
    Change.RENAMED: "->",
    Change.CHANGED: "~",
    Change.UNCHANGED: "=",
}
RENDER_WORDS = {
    Render.SAME: "render: same bytes",
    Render.DIFFERENT: "render: bytes differ",
    Render.BASE_NOT_RENDERED: "render: not rendered at base",
    Render.HEAD_NOT_RENDERED: "render: not rendered at head",
    Render.NOT_RENDERED: "render: not rendered",
    Render.RENDERED: "render: rendered",
}


def _diff_credits(shot: ShotDiff) -> str:
    old = shot.base.credits if shot.base is not None else None
    new = shot.head.credits if shot.head is not None else None
    if old is None or new is None or old == new:
        return f"{credits(old or new or 0)} credits"
    return f"{credits(old)} -> {credits(new)} credits"


def _diff_name(shot: ShotDiff) -> str:
    if shot.change is Change.RENAMED and shot.base is not None:
        return f"{shot.base.id} -> {shot.id}"
    return shot.id


def diff_summary(diff: SpecDiff) -> str:
    counts = ", ".join(
        f"{diff.count(c)} {c.value}"
        for c in (Change.ADDED, Change.REMOVED, Change.RENAMED, Change.CHANGED, Change.UNCHANGED)
    )
    differ = len(diff.renders_differ)
    delta = diff.head_credits - diff.base_credits
    return (
        f"Diff: {counts}; {differ} render{'s differ' if differ != 1 else ' differs'}. "
        f"Storyboard estimate: {credits(diff.base_credits)} -> {credits(diff.head_credits)} "
        f"credits ({'+' if delta >= 0 else '-'}{credits(abs(delta))})."
    )


def _sides(base: Side, head: Side) -> str:
    spec = head.spec_path
    if base.spec_path != head.spec_path:
        spec = f"{base.spec_path} -> {spec}"
    return f"{spec}: {base.revision.label} -> {head.revision.label}"


def diff_text(diff: SpecDiff, base: Side, head: Side) -> str:
    """One line per shot that changed or whose render differs, its field changes, a summary."""
    shown = [s for s in diff.shots if s.shown]
    lines = [f"tchavi-render diff {_sides(base, head)}"]
    width = max((len(_diff_name(s)) for s in shown), default=0)
    cost_width = max((len(_diff_credits(s)) for s in shown), default=0)
    for shot in shown:
        lines.append(
            f"  {DIFF_SYMBOL[shot.change]:>2} {_diff_name(shot):<{width}}  "
            f"{shot.change.value:<9}  {_diff_credits(shot):>{cost_width}}  "
            f"{RENDER_WORDS[shot.render]}"
        )
        lines += [f"        {c.describe()}" for c in shot.fields]
    if not shown:
        lines.append("No shot changed: the same requests, the same renders.")
    lines += _backend_note(diff)
    lines.append(diff_summary(diff))
    return "\n".join(lines)


def _backend_note(diff: SpecDiff) -> list[str]:
    old, new = diff.backends
    if old == new:
        return []
    return [
        f"backend: {old} -> {new}: renders of one backend are not reused by the other, so "
        "every shot renders again"
    ]


def diff_markdown(diff: SpecDiff, base: Side, head: Side) -> str:
    """A pull-request comment, starting with the marker CI finds it by."""
    out = [DIFF_MARKER, f"### tchavi-render diff: `{_sides(base, head)}`", ""]
    shown = [s for s in diff.shots if s.shown]
    if not shown:
        out += ["No shot changed: the same requests, the same renders.", ""]
    else:
        out += [
            "| | shot | change | credits | render | what changed |",
            "|---|---|---|---:|---|---|",
        ]
        for s in shown:
            what = "<br>".join(md_escape(c.describe()) for c in s.fields)
            out.append(
                f"| `{DIFF_SYMBOL[s.change]}` | `{md_escape(_diff_name(s))}` | {s.change.value} | "
                f"{_diff_credits(s).removesuffix(' credits')} | "
                f"{RENDER_WORDS[s.render].removeprefix('render: ')} | {what} |"
            )
        out.append("")
    out += [f"> {md_escape(note)}" for note in _backend_note(diff)]
    out.append(md_escape(diff_summary(diff)))
    return "\n".join(out).rstrip() + "\n"


def diff_json(diff: SpecDiff, base: Side, head: Side) -> str:
    def side(s: Side) -> dict[str, Any]:
        return {"revision": s.revision.name, "commit": s.revision.commit, "spec": s.spec_path}

    doc = {
        "base": {**side(base), "backend": diff.backends[0]},
        "head": {**side(head), "backend": diff.backends[1]},
        "shots": [s.as_json() for s in diff.shots],
        "summary": diff.summary_json(),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
