"""The Tchavi API emulator: a faithful local stand-in served over real HTTP on loopback.

    from tchavi_render.emulator import EmulatorConfig, running_emulator

    with running_emulator(EmulatorConfig(data_dir=path)) as emu:
        emu.base_url        # "http://127.0.0.1:PORT/api/v1"

One emulator serves a data dir at a time: a second one on the same dir (in this process or
another) raises DataDirInUse, naming the holder.

Importing this package is cheap: starlette, uvicorn and PyAV load only when an emulator
starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tchavi_render.emulator.config import EmulatorConfig, EmulatorStartError
from tchavi_render.emulator.datadir import IN_USE_HINT, DataDirInUse

if TYPE_CHECKING:
    from tchavi_render.emulator.server import RunningEmulator

__all__ = [
    "DataDirInUse",
    "EmulatorConfig",
    "EmulatorStartError",
    "RunningEmulator",
    "running_emulator",
]


@contextmanager
def running_emulator(
    config: EmulatorConfig,
    *,
    in_use_hint: str = IN_USE_HINT,
    clock: Callable[[], float] = time.time,
) -> Iterator[RunningEmulator]:
    """Serve an emulator in a background thread until the block exits.

    Returns once the server accepts connections; raises EmulatorStartError when the port is
    taken or the data dir cannot be used, and its DataDirInUse when another emulator serves
    the data dir (the message names it and ends with `in_use_hint`: what the caller's user
    should do). On exit the server and the render workers stop; unfinished jobs stay in the
    data dir and resume when an emulator starts on it again.

    `clock` (seconds since the epoch) decides when a job's latency is over and when a video
    URL expires: a test passes one it can move forward instead of sleeping.
    """
    from tchavi_render.emulator.server import serve

    with serve(config, in_use_hint=in_use_hint, clock=clock) as emulator:
        yield emulator


def __getattr__(name: str) -> object:
    if name == "RunningEmulator":
        from tchavi_render.emulator.server import RunningEmulator

        return RunningEmulator
    raise AttributeError(name)
