"""Every multi-step exchange with the API, written once as generators of effects.

A flow yields an effect (`Send` a request, `ReadChunk` of a streamed answer, `Sleep`) and
receives its result: an `httpx.Response` or the `httpx.RequestError` that sending raised, the
next chunk of bytes (b"" at the end) or that error, and None after a sleep. The sync and async
clients each drive these generators with their own I/O; the retry rules, the reconciliation
of ambiguous submits, polling and downloads live only here.

Retry rules (the API has no idempotency key, so a second POST can bill a second job):
- 429: wait Retry-After (else a backoff) and try again, for every request: a 429'd request
  was certainly not acted on.
- GET: retry 5xx, unreadable answers and transport errors with jittered exponential backoff.
- POST: send again without looking for the job only when the request certainly did not
  reach the service (connection refused, connect or pool timeout; or the 429 above). After
  any other failure, look for the job in GET /jobs (`find_unknown`): adopt the one
  candidate, refuse when there are several, and submit again only when there is none.

The modules: `steps` (the effects, one exchange, errors, waiting out a 429, GET with its
retries), `jobs` (retrieve, list, wait), `submission` (submit and the reconciliation of an
ambiguous one), `downloads` (a video streamed to a file).
"""

from tchavi_render.api.flow.downloads import download
from tchavi_render.api.flow.jobs import (
    DEFAULT_POLL_INTERVAL,
    LIST_PAGE,
    list_jobs,
    retrieve,
    wait,
)
from tchavi_render.api.flow.steps import CHUNK, Effect, Flow, Outcome, ReadChunk, Send, Sleep
from tchavi_render.api.flow.submission import CLOCK_SKEW_MARGIN, find_unknown, submit

__all__ = [
    "CHUNK",
    "CLOCK_SKEW_MARGIN",
    "DEFAULT_POLL_INTERVAL",
    "LIST_PAGE",
    "Effect",
    "Flow",
    "Outcome",
    "ReadChunk",
    "Send",
    "Sleep",
    "download",
    "find_unknown",
    "list_jobs",
    "retrieve",
    "submit",
    "wait",
]
