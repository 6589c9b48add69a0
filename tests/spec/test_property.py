"""Whatever the input, the loader returns a spec or raises SpecError: never anything else."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tchavi_render.errors import SpecError
from tchavi_render.media import MediaIndex
from tchavi_render.spec import load_spec

from .conftest import EXAMPLES

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BASES = [
    (EXAMPLES / name / "tchavi.yaml").read_text()
    for name in ("quickstart", "product-teaser", "localised", "music-video")
]
YAMLISH = st.text(
    alphabet=st.sampled_from(list("abcdefgixyz019 :-_[]{}&*!|>'\"#%,.?\n\t\\~@`=<^$()/")),
    max_size=300,
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["{{ x }}", "{% if %}", "{{ ref('a') }}", "16:9", "assets/x.png", "http://"]),
)
KEYS = st.sampled_from(
    [
        "version",
        "shots",
        "id",
        "prompt",
        "model",
        "duration",
        "vars",
        "for_each",
        "assets",
        "defaults",
        "reference_images",
        "image_url",
        "seed",
        "backend",
        "output_dir",
        "x",
    ]
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    for name in ("quickstart", "product-teaser", "localised", "music-video"):
        shutil.copytree(EXAMPLES / name, root, dirs_exist_ok=True)
    return root


INDEX = MediaIndex()


def _load(project: Path, text: str) -> None:
    spec = project / "fuzz.yaml"
    spec.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_spec(spec, media=INDEX)
    except SpecError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.message


@SETTINGS
@given(text=YAMLISH)
def test_arbitrary_text(project: Path, text: str) -> None:
    _load(project, text)


@SETTINGS
@given(data=DATA)
def test_arbitrary_yaml_data(project: Path, data: object) -> None:
    _load(project, yaml.safe_dump(data, allow_unicode=True))


@SETTINGS
@given(
    base=st.sampled_from(BASES), data=st.dictionaries(KEYS, DATA, max_size=3), shot=st.booleans()
)
def test_valid_specs_with_parts_replaced(
    project: Path, base: str, data: dict[str, object], shot: bool
) -> None:
    spec = yaml.safe_load(base)
    if shot:
        spec["shots"][0].update(data)
    else:
        spec.update(data)
    _load(project, yaml.safe_dump(spec, allow_unicode=True))


@SETTINGS
@given(
    base=st.sampled_from(BASES),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["delete", "insert", "duplicate"]),
            st.floats(min_value=0, max_value=1),
            st.integers(min_value=1, max_value=40),
            YAMLISH,
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_valid_specs(
    project: Path, base: str, edits: list[tuple[str, float, int, str]]
) -> None:
    text = base
    for kind, where, size, insert in edits:
        at = int(where * len(text))
        if kind == "delete":
            text = text[:at] + text[at + size :]
        elif kind == "insert":
            text = text[:at] + insert + text[at:]
        else:
            text = text[:at] + text[at : at + size] + text[at:]
    _load(project, text)
