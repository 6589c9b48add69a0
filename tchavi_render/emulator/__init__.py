"""The Tchavi API emulator: a faithful local stand-in served over real HTTP on loopback.

    from tchavi_render.emulator import EmulatorConfig, running_emulator

    with running_emulator(EmulatorConfig(data_dir=path)) as emu:
        emu.base_url        # "http://127.0.0.1:PORT/api/v1"

Importing this package is cheap: starlette, uvicorn and PyAV load only when an emulator
starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tchavi_render.emulator.config import EmulatorConfig, EmulatorStartError

if TYPE_CHECKING:
    from tchavi_render.emulator.server import RunningEmulator

__all__ = ["EmulatorConfig", "EmulatorStartError", "RunningEmulator", "running_emulator"]


@contextmanager
def running_emulator(config: EmulatorConfig) -> Iterator[RunningEmulator]:
    """Serve an emulator in a background thread until the block exits.

    Returns once the server accepts connections; raises EmulatorStartError when the port is
    taken or the data dir cannot be used. On exit the server and the render workers
    stop; unfinished jobs stay in the data dir and resume when an emulator starts on it again.
    """
    from tchavi_render.emulator.server import serve

    with serve(config) as emulator:
        yield emulator


def __getattr__(name: str) -> object:
    if name == "RunningEmulator":
        from tchavi_render.emulator.server import RunningEmulator

        return RunningEmulator
    raise AttributeError(name)
