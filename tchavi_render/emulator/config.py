"""The emulator's settings (one frozen value, checked when built) and its start-up error."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from tchavi_render.errors import TchaviRenderError

__all__ = ["IP_RPM", "EmulatorConfig", "EmulatorStartError"]

IP_RPM = 500  # the service's requests a minute per client address, whatever the key


class EmulatorStartError(TchaviRenderError):
    """The emulator could not start: its port is taken, or its data dir is unusable."""


@dataclass(frozen=True)
class EmulatorConfig:
    """How an emulator behaves. Rates are fractions in [0, 1]; times are seconds.

    `rpm=None` means no rate limit per key; `ip_rpm` is the service's limit per client
    address, all keys together (None: none). `api_key=None` means any non-empty bearer
    token is an account of its own. `fault_seed` makes the injected faults (failed jobs,
    5xx answers) reproducible.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    latency: float = 0.0
    fail_rate: float = 0.0
    error_rate: float = 0.0
    rpm: int | None = None
    ip_rpm: int | None = IP_RPM
    credits: int = 500
    api_key: str | None = field(default=None, repr=False)
    url_ttl: float = 3600.0
    fault_seed: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append(f"port must be 0..65535, got {self.port}")
        if not (math.isfinite(self.latency) and self.latency >= 0):
            problems.append(f"latency must be >= 0 seconds, got {self.latency}")
        for name in ("fail_rate", "error_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name} must be between 0 and 1, got {value}")
        for name in ("rpm", "ip_rpm"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be at least 1 (or None for no limit), got {value}")
        if self.credits < 0:
            problems.append(f"credits must be >= 0, got {self.credits}")
        if self.api_key is not None and not self.api_key.strip():
            problems.append("api_key must not be empty (use None to accept any key)")
        if not (math.isfinite(self.url_ttl) and self.url_ttl > 0):
            problems.append(f"url_ttl must be > 0 seconds, got {self.url_ttl}")
        if problems:
            raise ValueError("invalid emulator config: " + "; ".join(problems))
