"""The Tchavi API client: sync and async twins over one set of flows, and the wire models."""

from tchavi_render.api.client import AsyncTchaviClient, TchaviClient
from tchavi_render.api.errors import RateLimitInfo
from tchavi_render.api.models import GenerationParams, Job, JobList, check_request

__all__ = [
    "AsyncTchaviClient",
    "GenerationParams",
    "Job",
    "JobList",
    "RateLimitInfo",
    "TchaviClient",
    "check_request",
]
