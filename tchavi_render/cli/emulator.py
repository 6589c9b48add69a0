"""The `emulator` verb: serve the Tchavi API emulator until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

import click

from tchavi_render.emulator.config import IP_RPM

__all__ = ["default_data_dir", "emulator"]

DEFAULT_PORT = 8765


def default_data_dir() -> Path:
    """Where jobs and videos persist unless --data-dir says otherwise."""
    import platformdirs

    return Path(platformdirs.user_data_dir("tchavi-render", appauthor=False)) / "emulator"


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Seconds from submission before a job can complete or fail.",
)
@click.option(
    "--fail-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of jobs that fail (refunded).",
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Fraction of API requests answered with 500 or 502.",
)
@click.option(
    "--rpm",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per minute allowed per key (429 beyond). Default: no limit.",
)
@click.option(
    "--ip-rpm",
    type=click.IntRange(min=0),
    default=IP_RPM,
    show_default=True,
    help="Requests per minute allowed per client address, all keys together; 0: no limit.",
)
@click.option(
    "--credits",
    type=click.IntRange(min=0),
    default=500,
    show_default=True,
    help="Starting balance of each new account.",
)
@click.option(
    "--api-key",
    default=None,
    help="Accept only this key. Default: any non-empty bearer token is an account.",
)
@click.option(
    "--url-ttl",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Seconds a video URL stays valid after the job completes (then 410).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where jobs and videos persist. Default: the user data dir.",
)
@click.option(
    "--fault-seed",
    type=int,
    default=None,
    help="Seed for injected faults, to reproduce a run.",
)
def emulator(
    host: str,
    port: int,
    latency: float,
    fail_rate: float,
    error_rate: float,
    rpm: int | None,
    ip_rpm: int,
    credits: int,
    api_key: str | None,
    url_ttl: float,
    data_dir: Path | None,
    fault_seed: int | None,
) -> None:
    """Serve the Tchavi API emulator at http://HOST:PORT/api/v1 until Ctrl-C."""
    from tchavi_render.emulator import EmulatorConfig, running_emulator

    if api_key is not None and not api_key.strip():
        raise click.BadParameter("must not be empty", param_hint="'--api-key'")
    config = EmulatorConfig(
        data_dir=data_dir if data_dir is not None else default_data_dir(),
        host=host,
        port=port,
        latency=latency,
        fail_rate=fail_rate,
        error_rate=error_rate,
        rpm=rpm,
        ip_rpm=ip_rpm or None,
        credits=credits,
        api_key=api_key,
        url_ttl=url_ttl,
        fault_seed=fault_seed,
    )
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        with running_emulator(config) as emu:
            click.echo(f"Tchavi emulator serving at {emu.base_url}")
            click.echo(f"Data: {config.data_dir}. Press Ctrl-C to stop.")
            sys.stdout.flush()
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        click.echo("Emulator stopped.")
    finally:
        signal.signal(signal.SIGTERM, previous)
