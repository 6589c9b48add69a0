"""The Tchavi API client: sync and async twins over one set of flows, and the wire models.

The clients (and httpx under them) load on first use, so that `plan`, which needs only the
wire models, does not pay for them.
"""

from typing import TYPE_CHECKING

from tchavi_render.api.errors import RateLimitInfo
from tchavi_render.api.models import GenerationParams, Job, JobList, check_request

if TYPE_CHECKING:
    from tchavi_render.api.client import AsyncTchaviClient, TchaviClient

__all__ = [
    "AsyncTchaviClient",
    "GenerationParams",
    "Job",
    "JobList",
    "RateLimitInfo",
    "TchaviClient",
    "check_request",
]


def __getattr__(name: str) -> object:
    if name in ("AsyncTchaviClient", "TchaviClient"):
        from tchavi_render.api import client

        return getattr(client, name)
    raise AttributeError(name)
