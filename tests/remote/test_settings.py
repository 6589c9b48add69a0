"""Where the remote cache is configured: the spec's `cache:` section, and the environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tchavi_render.engine.remote import RemoteConfig, remote_config
from tchavi_render.errors import RemoteCacheError, SpecError
from tchavi_render.spec import load_spec
from tchavi_render.spec.model import CacheSpec

REPO = Path(__file__).resolve().parents[2]


def test_a_bad_cache_section_is_reported_by_line_and_column(tmp_path: Path) -> None:
    spec = tmp_path / "tchavi.yaml"
    spec.write_text(
        "version: 1\n"
        "cache:\n"
        "  remote: https://bucket/x\n"
        "  mode: write\n"
        "  media_url_ttl: 0\n"
        "  secret: hunter2\n"
        "shots:\n"
        "  - id: a\n"
        "    model: seedance-2\n"
        "    prompt: hi\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert [str(p).removeprefix(f"{spec}:") for p in caught.value.problems] == [
        "3:11: remote: must be an s3:// URL like s3://my-bucket/renders, got 'https://bucket/x'",
        "4:9: mode: must be one of 'read-write', 'read', got 'write'. Did you mean 'read-write'?",
        "5:18: media_url_ttl: must be a number of seconds from 1 to 604800 (a week)",
        "6:3: unknown key 'secret'.",
    ]


def test_the_environment_wins_over_the_spec_and_carries_the_secret() -> None:
    spec = CacheSpec(remote="s3://team-cache/renders", mode="read-write", media_url_ttl=60)
    assert remote_config(spec, {}) == RemoteConfig("team-cache", "renders", media_url_ttl=60)
    config = remote_config(
        spec,
        {
            "TCHAVI_RENDER_REMOTE_CACHE": "s3://ci-cache/a/b/",
            "TCHAVI_RENDER_REMOTE_CACHE_MODE": "read",
            "TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL": "http://127.0.0.1:9000",
            "TCHAVI_RENDER_CACHE_SECRET": "s3cr3t",
        },
    )
    assert config is not None
    assert (config.url, config.mode, config.endpoint_url) == (
        "s3://ci-cache/a/b",
        "read",
        "http://127.0.0.1:9000",
    )
    assert config.record_key("sha256:" + "a" * 64) == f"a/b/records/{'a' * 64}.json"
    assert config.secret == b"s3cr3t" and "s3cr3t" not in repr(config)
    assert remote_config(spec, {"TCHAVI_RENDER_REMOTE_CACHE": "off"}) is None
    assert remote_config(None, {}) is None
    assert remote_config(CacheSpec(mode="read"), {}) is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TCHAVI_RENDER_REMOTE_CACHE", "team-cache", "must be an s3:// URL"),
        ("TCHAVI_RENDER_REMOTE_CACHE_MODE", "write", "must be one of read-write, read"),
        ("TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL", "minio:9000", "must be an http(s) URL"),
    ],
)
def test_a_bad_environment_variable_is_named(name: str, value: str, message: str) -> None:
    environ = {"TCHAVI_RENDER_REMOTE_CACHE": "s3://team-cache/renders", name: value}
    with pytest.raises(RemoteCacheError) as caught:
        remote_config(None, environ)
    assert str(caught.value).startswith(name) and message in str(caught.value)


def test_without_a_remote_cache_boto3_is_never_imported(tmp_path: Path) -> None:
    spec = tmp_path / "tchavi.yaml"
    spec.write_text("version: 1\nshots:\n  - id: a\n    model: seedance-2\n    prompt: hi\n")
    code = (
        "import sys\n"
        "from tchavi_render.cli.main import main\n"
        f"sys.argv = ['tchavi-render', 'plan', {str(spec)!r}]\n"
        "try:\n    main()\n"
        "except SystemExit:\n    pass\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert "1 to create" in out
    assert out.splitlines()[-1] == "False False"
