"""The Draftsman HTTP API from Python: submit a job, wait for it, follow its logs, read its
patch, cancel, rerun or resume it, and fork it into a group of attempts (best-of-N).

Answers are read as docs/api-versioning.md says clients should: fields a newer API adds
are kept (``model_extra``), an enum value it adds (a status, a problem code) is a plain
string, and a stream event this client does not know is skipped.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import SSEError, connect_sse

from .errors import ApiError, Unreachable
from .models import (
    Approval,
    AuditEvent,
    AuditTrail,
    GroupStarted,
    GroupView,
    JobCancelling,
    JobPage,
    JobRerun,
    JobResumed,
    JobSpec,
    JobStarted,
    JobView,
    LogLine,
    LogStatusEvent,
    LogStepEvent,
    Usage,
)

DEFAULT_URL = "http://127.0.0.1:3000"
# The API's own bound on one long poll (GET /v1/jobs/{id}/wait?timeout=).
MAX_WAIT_SECONDS = 120


def find_token(explicit: str | None = None, cwd: Path | None = None) -> str | None:
    """The API token: given, else DRAFTSMAN_TOKEN, else the file DRAFTSMAN_TOKEN_FILE, else
    the token a local ``npm start`` wrote (DRAFTSMAN_DATA_DIR/api-token, ./data/api-token),
    the same places the CLI looks."""
    if explicit:
        return explicit
    if os.environ.get("DRAFTSMAN_TOKEN"):
        return os.environ["DRAFTSMAN_TOKEN"]
    here = cwd or Path.cwd()
    candidates = [
        os.environ.get("DRAFTSMAN_TOKEN_FILE"),
        os.environ.get("DRAFTSMAN_DATA_DIR") and os.path.join(os.environ["DRAFTSMAN_DATA_DIR"], "api-token"),
        here / "data" / "api-token",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            token = Path(candidate).read_text().strip()
            if token:
                return token
    return None


@dataclass(frozen=True)
class Line:
    """A line of step output; ``id`` (<chunk>.<line>) resumes a stream after it."""

    id: str
    line: LogLine


@dataclass(frozen=True)
class StepChange:
    """A step started or finished."""

    event: LogStepEvent


@dataclass(frozen=True)
class Status:
    """The job's status, on connecting and on every change; ``final`` on the stream's last
    event, once the job has ended."""

    status: str
    final: bool


FollowEvent = Line | StepChange | Status


class Draftsman:
    """A client of one Draftsman API.

    ``url`` defaults to DRAFTSMAN_URL, else http://127.0.0.1:3000; ``token`` as
    :func:`find_token` says. Requests that may be repeated safely (every GET, and POSTs
    with an Idempotency-Key, which :meth:`submit` always sends) are retried up to
    ``retries`` times when the API cannot be reached or answers 429, 502, 503 or 504.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = (url or os.environ.get("DRAFTSMAN_URL") or DEFAULT_URL).rstrip("/")
        token = find_token(token)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self._retries = retries
        self.reconnect_seconds = 1.0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Draftsman:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # Jobs

    def submit(self, spec: JobSpec | Mapping[str, Any], *, idempotency_key: str | None = None) -> str:
        """Starts a job; answers its id. Without a key one is made, so that this call's own
        retries never start a second job; pass one to make retries of your own safe too."""
        body = spec.model_dump(mode="json", exclude_none=True) if isinstance(spec, JobSpec) else dict(spec)
        key = idempotency_key or str(uuid.uuid4())
        answer = self._request("POST", "/v1/jobs", json=body, headers={"idempotency-key": key})
        return JobStarted.model_validate(answer.json()).id

    def job(self, job_id: str) -> JobView:
        return JobView.model_validate(self._request("GET", f"/v1/jobs/{_segment(job_id)}").json())

    def jobs(
        self,
        *,
        status: str | None = None,
        repo: str | None = None,
        commit: str | None = None,
        label: str | None = None,
        principal: str | None = None,
        q: str | None = None,
        created_after: str | None = None,
        created_before: str | None = None,
        page_size: int = 100,
    ) -> Iterator[JobView]:
        """Every job that matches, newest first, page by page (cursor pagination: a job
        started meanwhile neither repeats one nor hides one)."""
        query = {
            "status": status,
            "repo": repo,
            "commit": commit,
            "label": label,
            "principal": principal,
            "q": q,
            "createdAfter": created_after,
            "createdBefore": created_before,
            "limit": page_size,
        }
        params = {k: v for k, v in query.items() if v is not None}
        while True:
            page = JobPage.model_validate(self._request("GET", "/v1/jobs", params=params).json())
            yield from page.jobs
            if page.nextCursor is None:
                return
            params["cursor"] = page.nextCursor

    def events(self, job_id: str) -> list[AuditEvent]:
        return AuditTrail.model_validate(self._request("GET", f"/v1/jobs/{_segment(job_id)}/events").json()).events

    def patch(self, job_id: str) -> str:
        """The workspace's changes as ``git diff`` wrote them, ready for ``git apply``."""
        return self._request("GET", f"/v1/jobs/{_segment(job_id)}/patch").text

    def cancel(self, job_id: str, reason: str | None = None, *, idempotency_key: str | None = None) -> JobCancelling:
        body = {"reason": reason} if reason else {}
        key = idempotency_key or str(uuid.uuid4())
        answer = self._request("POST", f"/v1/jobs/{_segment(job_id)}/cancel", json=body, headers={"idempotency-key": key})
        return JobCancelling.model_validate(answer.json())

    def approve(
        self,
        job_id: str,
        comment: str | None = None,
        *,
        budget: Mapping[str, float] | None = None,
        idempotency_key: str | None = None,
    ) -> Approval:
        """Lets a job waiting at its approval gate go on (the token needs the approve scope).
        At its budget's gate, ``budget`` raises the limits (``{"cpuSeconds": 60}``); without
        it the crossed limit is doubled."""
        return self._decide(job_id, "approve", comment, idempotency_key, budget)

    def reject(self, job_id: str, comment: str | None = None, *, idempotency_key: str | None = None) -> Approval:
        """Ends a job waiting at its approval gate as ``rejected``; the gated steps never run."""
        return self._decide(job_id, "reject", comment, idempotency_key)

    def _decide(
        self, job_id: str, decision: str, comment: str | None, idempotency_key: str | None, budget: Mapping[str, float] | None = None
    ) -> Approval:
        body: dict[str, Any] = {"decision": decision, **({"comment": comment} if comment else {})}
        if budget:
            body["budget"] = dict(budget)
        key = idempotency_key or str(uuid.uuid4())
        answer = self._request("POST", f"/v1/jobs/{_segment(job_id)}/approval", json=body, headers={"idempotency-key": key})
        return Approval.model_validate(answer.json())

    def rerun(self, job_id: str, *, idempotency_key: str | None = None) -> JobRerun:
        """The job's spec again, as a new job of the caller's."""
        key = idempotency_key or str(uuid.uuid4())
        answer = self._request("POST", f"/v1/jobs/{_segment(job_id)}/rerun", headers={"idempotency-key": key})
        return JobRerun.model_validate(answer.json())

    def resume(
        self,
        job_id: str,
        *,
        loop: Mapping[str, Any] | None = None,
        validate: list[str] | None = None,
        publish: list[str] | None = None,
        idempotency_key: str | None = None,
    ) -> JobResumed:
        """A failed or timed-out job again, from the last workspace it kept, running only what
        follows that point; ``loop``, ``validate`` and ``publish`` change those phases."""
        body = {k: v for k, v in (("loop", dict(loop) if loop else None), ("validate", validate), ("publish", publish)) if v is not None}
        key = idempotency_key or str(uuid.uuid4())
        answer = self._request("POST", f"/v1/jobs/{_segment(job_id)}/resume", json=body, headers={"idempotency-key": key})
        return JobResumed.model_validate(answer.json())

    def usage(
        self,
        *,
        principal: str | None = None,
        label: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Usage:
        """The jobs' ledgers summed (wall and CPU time, memory peak, steps, egress), in all and
        per principal, for jobs created in [since, until) (ISO 8601 times; the API's default: the
        last 30 days). Another principal's needs the admin scope."""
        params = {k: v for k, v in (("principal", principal), ("label", label), ("from", since), ("to", until)) if v is not None}
        return Usage.model_validate(self._request("GET", "/v1/usage", params=params).json())

    # Groups

    def fork(
        self,
        job_id: str,
        *,
        after: str,
        count: int | None = None,
        variants: list[Mapping[str, Any]] | None = None,
        best: str | None = None,
        idempotency_key: str | None = None,
    ) -> GroupStarted:
        """A group of attempts from the workspace the job kept at ``after`` (``setup`` or
        ``loop-<k>``), each a job of its own; ``best`` is ``first-validated``,
        ``smallest-patch`` or ``none``. All are started, or none."""
        body: dict[str, Any] = {"after": after}
        if count is not None:
            body["count"] = count
        if variants is not None:
            body["variants"] = [dict(v) for v in variants]
        if best is not None:
            body["best"] = best
        key = idempotency_key or str(uuid.uuid4())
        answer = self._request("POST", f"/v1/jobs/{_segment(job_id)}/forks", json=body, headers={"idempotency-key": key})
        return GroupStarted.model_validate(answer.json())

    def group(self, group_id: str) -> GroupView:
        return GroupView.model_validate(self._request("GET", f"/v1/groups/{_segment(group_id)}").json())

    def wait_group(self, group_id: str, timeout: float | None = None, poll: float = 1.0) -> GroupView:
        """The group once every attempt has ended (or as it is after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            group = self.group(group_id)
            if group.endedAt is not None or (deadline is not None and time.monotonic() >= deadline):
                return group
            time.sleep(poll)

    def wait(self, job_id: str, timeout: float | None = None) -> JobView:
        """The job once it has ended; with ``timeout`` (seconds), the job as it is then if it
        has not. Long polls of at most 120 s each, so no connection stays idle for longer."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = MAX_WAIT_SECONDS if deadline is None else max(0.0, deadline - time.monotonic())
            seconds = min(MAX_WAIT_SECONDS, int(left + 0.999))
            answer = self._request(
                "GET",
                f"/v1/jobs/{_segment(job_id)}/wait",
                params={"timeout": seconds},
                # The API holds the request up to `seconds`: the read timeout must outlast it.
                timeout=httpx.Timeout(self._http.timeout.connect, read=seconds + 30),
            )
            job = JobView.model_validate(answer.json())
            if answer.headers.get("x-draftsman-job-ended") == "true" or job.finishedAt is not None:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                return job

    def run(self, spec: JobSpec | Mapping[str, Any], *, timeout: float | None = None) -> JobView:
        """Submits a job and waits for it."""
        return self.wait(self.submit(spec), timeout)

    # Logs

    def logs(self, job_id: str, step: str | None = None) -> Iterator[LogLine]:
        """Every stored line of the job (or of one step, ``<kind>-<index>``), in order."""
        params = {"step": step} if step else {}
        with self._stream("GET", f"/v1/jobs/{_segment(job_id)}/logs", params=params) as answer:
            for text in answer.iter_lines():
                if text:
                    yield LogLine.model_validate_json(text)

    def follow(self, job_id: str, step: str | None = None, *, after: str | None = None, reconnects: int = 10) -> Iterator[FollowEvent]:
        """The live stream of the job until it ends: lines, step changes and statuses. A
        connection that drops is resumed after the last line received (Last-Event-ID),
        so no line is lost or repeated, up to ``reconnects`` times in a row. ``after``
        resumes a stream a previous call left (a :class:`Line`'s id)."""
        params = {"follow": "true", **({"step": step} if step else {})}
        last_id = after
        failures = 0
        while True:
            headers = {"last-event-id": last_id} if last_id else {}
            try:
                with connect_sse(self._http, "GET", f"/v1/jobs/{_segment(job_id)}/logs", params=params, headers=headers, timeout=httpx.Timeout(self._http.timeout.connect, read=60)) as source:
                    if source.response.is_error:
                        source.response.read()
                        raise ApiError.of(source.response)
                    for sse in source.iter_sse():
                        if sse.event == "line":
                            last_id = sse.id or last_id
                            failures = 0
                            yield Line(sse.id, LogLine.model_validate_json(sse.data))
                        elif sse.event == "step":
                            yield StepChange(LogStepEvent.model_validate_json(sse.data))
                        elif sse.event in ("status", "end"):
                            status = LogStatusEvent.model_validate_json(sse.data).status
                            yield Status(status, final=sse.event == "end")
                            if sse.event == "end":
                                return
                        # heartbeats and events a newer API adds: skipped
            except (httpx.TransportError, SSEError) as err:
                if failures >= reconnects:
                    raise Unreachable(f"the log stream of {job_id} kept dropping ({reconnects} reconnects): {err}") from err
            else:
                # The stream closed without its end event: the connection dropped.
                if failures >= reconnects:
                    raise Unreachable(f"the log stream of {job_id} kept dropping ({reconnects} reconnects)")
            failures += 1
            time.sleep(self.reconnect_seconds)

    # Transport

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self._retries + 1):
            try:
                answer = self._http.request(method, path, **kwargs)
            except httpx.TransportError as err:
                if attempt == self._retries or not _repeatable(method, kwargs):
                    raise Unreachable(f"cannot reach the Draftsman API at {self.url}: {err}") from err
                time.sleep(_backoff(attempt, None))
                continue
            if answer.status_code in (429, 502, 503, 504) and attempt < self._retries and _repeatable(method, kwargs):
                time.sleep(_backoff(attempt, answer.headers.get("retry-after")))
                continue
            if answer.is_error:
                raise ApiError.of(answer)
            return answer
        raise AssertionError("unreachable")

    def _stream(self, method: str, path: str, **kwargs: Any):  # noqa: ANN202 (a context manager)
        return _Streaming(self, method, path, kwargs)


class _Streaming:
    """A streamed answer whose refusal is raised as an ApiError on entering."""

    def __init__(self, client: Draftsman, method: str, path: str, kwargs: dict[str, Any]) -> None:
        self._context = client._http.stream(method, path, **kwargs)
        self._url = client.url

    def __enter__(self) -> httpx.Response:
        try:
            answer = self._context.__enter__()
        except httpx.TransportError as err:
            raise Unreachable(f"cannot reach the Draftsman API at {self._url}: {err}") from err
        if answer.is_error:
            answer.read()
            self._context.__exit__(None, None, None)
            raise ApiError.of(answer)
        return answer

    def __exit__(self, *exc: Any) -> None:
        self._context.__exit__(*exc)


def _segment(job_id: str) -> str:
    return quote(job_id, safe="")


def _repeatable(method: str, kwargs: Mapping[str, Any]) -> bool:
    return method == "GET" or "idempotency-key" in (kwargs.get("headers") or {})


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after and retry_after.isdigit():
        return min(float(retry_after), 30.0)
    return min(0.5 * 2**attempt, 8.0)
