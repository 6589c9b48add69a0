"""YAML bombs, deep nesting and huge strings: refused quickly, in bounded memory, clearly."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

HEAD = "version: 1\ndefaults:\n  model: seedance-2\n  duration: 1\nshots:\n"
MAX_SECONDS = 10.0  # about 0.5 s on the 2-core reference machine: the bound is generous
MAX_RSS_MB = 300


def billion_laughs() -> str:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]
    return "\n".join(lines) + "\n"


def merge_chain() -> str:
    parts = ["base: &m0 {x: 1}\n"]
    parts += [f"m{i}: &m{i}\n  <<: *m{i - 1}\n  k{i}: 1\n" for i in range(1, 2000)]
    return "".join(parts)


def for_each_product() -> str:
    values = str(list(range(100)))
    return (
        HEAD
        + "  - id: 's{{ a }}-{{ b }}-{{ c }}'\n    prompt: x\n    for_each:\n"
        + f"      a: {values}\n      b: {values}\n      c: {values}\n"
    )


BOMBS: dict[str, tuple[Callable[[], str], str]] = {
    "billion-laughs": (billion_laughs, "expands to more than 1000000 nodes"),
    "merge-key-chain": (merge_chain, "expands to more than 1000000 nodes"),
    "flow-nesting-10k": (
        lambda: "version: 1\nshots: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "exceeded maximum nesting depth",
    ),
    "block-nesting-2k": (
        lambda: "version: 1\nshots:\n" + "".join("  " * i + "- \n" for i in range(1, 2000)),
        "nests deeper than 64 levels",
    ),
    "file-over-8mib": (
        lambda: HEAD + "  - id: a\n    prompt: x\n# " + "x" * (9 << 20) + "\n",
        "is larger than 8 MiB",
    ),
    "prompt-of-7mib": (
        lambda: HEAD + '  - id: a\n    prompt: "' + "y" * (7 << 20) + '"\n',
        "prompt: is 7,340,032 characters long; at most 100,000 are allowed",
    ),
    "key-of-5m-characters": (
        lambda: "version: 1\n" + "k" * 5_000_000 + ": 1\nshots: []\n",
        "YAML syntax error",
    ),
    "for-each-million": (for_each_product, "past the limit of 100000 per spec"),
    "template-output-bomb": (
        lambda: HEAD + "  - id: a\n    prompt: \"{{ ('ab' * 50000) ~ ('ab' * 50000) }}\"\n",
        "would make more than 100000 characters",
    ),
}


LAUNCHER = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print('PEAK_RSS_KIB=' + str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss), "
    "end=''); sys.exit(code)"
)


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_bomb_is_refused_quickly_in_bounded_memory_with_a_clear_error(
    tmp_path: Path, name: str
) -> None:
    make, message = BOMBS[name]
    spec = tmp_path / "tchavi.yaml"
    spec.write_text(make())
    started = time.monotonic()
    # Measured through a small launcher: a child forked straight from this (large) test
    # process would count the pages it inherits before exec in its peak RSS.
    process = subprocess.run(
        [
            sys.executable,
            "-c",
            LAUNCHER,
            sys.executable,
            "-m",
            "tchavi_render",
            "validate",
            str(spec),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    output, _, peak = process.stdout.rpartition("PEAK_RSS_KIB=")
    assert process.returncode == 1, output
    assert message in output, output[:500]
    assert "Traceback" not in output
    assert elapsed < MAX_SECONDS
    assert int(peak) / 1024 < MAX_RSS_MB  # ru_maxrss is in KiB on Linux
