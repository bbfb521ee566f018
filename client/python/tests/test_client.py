"""The client against a stand-in transport (httpx.MockTransport): what it sends, how it
reads answers, retries and resumes. Needs no API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from draftsman_client import ApiError, Draftsman, Line, Status, StepChange, Unreachable, find_token

JOB = {
    "id": "job-1",
    "status": "running",
    "repo": "https://git.example/r.git",
    "commit": "abc",
    "createdAt": "2026-12-03T10:00:00Z",
    "startedAt": "2026-12-03T10:00:01Z",
    "finishedAt": None,
    "steps": [],
    "loop": None,
}
PROBLEM = {
    "type": "/problems/invalid_spec",
    "title": "Invalid job spec",
    "status": 400,
    "detail": "commit: Required",
    "instance": "req-7",
    "code": "invalid_spec",
    "field": "commit",
}


def client(handler, **kwargs) -> Draftsman:
    api = Draftsman("http://api.test", "tok", transport=httpx.MockTransport(handler), **kwargs)
    api.reconnect_seconds = 0
    return api


def sse(*events: tuple[str, str | None, dict]) -> bytes:
    out = ""
    for name, event_id, data in events:
        out += (f"id: {event_id}\n" if event_id else "") + f"event: {name}\ndata: {json.dumps(data)}\n\n"
    return out.encode()


def line(n: int) -> dict:
    return {"step": "setup-0", "stream": "stdout", "time": "2026-12-03T10:00:02Z", "text": str(n)}


def test_a_refusal_is_an_api_error_with_the_problem_document():
    api = client(lambda r: httpx.Response(400, json=PROBLEM, headers={"x-request-id": "req-7"}))
    with pytest.raises(ApiError) as caught:
        api.submit({"repo": "x"})
    e = caught.value
    assert (e.status, e.code, e.field, e.request_id, e.detail) == (400, "invalid_spec", "commit", "req-7", "commit: Required")
    assert str(e) == "400 invalid_spec: commit: Required"


def test_an_error_page_that_is_not_a_problem_document_says_its_status():
    api = client(lambda r: httpx.Response(502, text="<html>bad gateway</html>"), retries=0)
    with pytest.raises(ApiError) as caught:
        api.job("job-1")
    assert (caught.value.status, caught.value.code, caught.value.detail) == (502, None, "HTTP 502")


def test_submit_sends_one_key_and_retries_with_it_until_the_api_answers():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["idempotency-key"], request.headers["authorization"], json.loads(request.content)))
        if len(seen) < 3:
            return httpx.Response(503, headers={"retry-after": "0"}, json={**PROBLEM, "status": 503, "code": "unavailable"})
        return httpx.Response(202, json={"id": "job-9"})

    assert client(handler).submit({"repo": "r", "commit": "c"}) == "job-9"
    assert len(seen) == 3
    assert len({key for key, _, _ in seen}) == 1
    assert seen[0][1:] == ("Bearer tok", {"repo": "r", "commit": "c"})


def test_each_submit_has_a_key_of_its_own_unless_given_one():
    keys = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        return httpx.Response(202, json={"id": "job-9"})

    api = client(handler)
    api.submit({"repo": "r"})
    api.submit({"repo": "r"})
    api.submit({"repo": "r"}, idempotency_key="mine")
    assert keys[0] != keys[1] and keys[2] == "mine"


def test_a_transport_failure_is_retried_then_reported_as_unreachable(monkeypatch):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    monkeypatch.setattr("draftsman_client.client._backoff", lambda attempt, retry_after: 0)
    with pytest.raises(Unreachable, match="cannot reach the Draftsman API at http://api.test"):
        client(handler, retries=2).job("job-1")
    assert len(calls) == 3


def test_answers_keep_fields_and_values_a_newer_api_adds():
    api = client(lambda r: httpx.Response(200, json={**JOB, "status": "paused_for_review", "newField": 1}))
    job = api.job("job-1")
    assert job.status == "paused_for_review"
    assert job.model_extra == {"newField": 1}


def test_ids_are_one_path_segment():
    paths = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json=JOB)

    client(handler).job("a/b?c")
    assert paths == ["/v1/jobs/a%2Fb%3Fc"]


def test_jobs_follows_the_cursor_to_the_last_page():
    queries = []

    def handler(request: httpx.Request) -> httpx.Response:
        queries.append(dict(request.url.params))
        if "cursor" not in request.url.params:
            return httpx.Response(200, json={"jobs": [{**JOB, "id": "job-2"}], "nextCursor": "c1"})
        return httpx.Response(200, json={"jobs": [{**JOB, "id": "job-1"}], "nextCursor": None})

    ids = [j.id for j in client(handler).jobs(status="running", label="pr=1", page_size=1)]
    assert ids == ["job-2", "job-1"]
    assert queries == [
        {"status": "running", "label": "pr=1", "limit": "1"},
        {"status": "running", "label": "pr=1", "limit": "1", "cursor": "c1"},
    ]


def test_wait_long_polls_until_the_job_has_ended():
    timeouts = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.url.params["timeout"])
        ended = len(timeouts) == 3
        body = {**JOB, "status": "succeeded", "finishedAt": "2026-12-03T10:05:00Z"} if ended else JOB
        return httpx.Response(200, json=body, headers={"x-draftsman-job-ended": str(ended).lower()})

    assert client(handler).wait("job-1").status == "succeeded"
    assert timeouts == ["120", "120", "120"]


def test_wait_with_a_timeout_answers_the_job_as_it_is():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=JOB, headers={"x-draftsman-job-ended": "false"})

    assert client(handler).wait("job-1", timeout=0).status == "running"


def test_logs_reads_every_ndjson_line():
    body = "".join(json.dumps(line(n)) + "\n" for n in range(1, 4))
    api = client(lambda r: httpx.Response(200, text=body, headers={"content-type": "application/x-ndjson"}))
    assert [l.text for l in api.logs("job-1")] == ["1", "2", "3"]


def test_follow_resumes_after_the_last_line_it_got_and_skips_what_it_does_not_know():
    requests = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        headers = {"content-type": "text/event-stream"}
        if len(requests) == 1:
            # Dropped after line 2: no end event.
            body = sse(("status", None, {"status": "running"}), ("line", "4.0", line(1)), ("line", "4.1", line(2)))
            return httpx.Response(200, content=b"retry: 1000\n\n: heartbeat\n\n" + body, headers=headers)
        body = sse(
            ("status", None, {"status": "running"}),
            ("step", None, {"type": "step_finished", "kind": "setup", "index": 0, "status": "succeeded"}),
            ("something_new", None, {}),
            ("line", "5.0", line(3)),
            ("end", None, {"status": "succeeded"}),
        )
        return httpx.Response(200, content=body, headers=headers)

    events = list(client(handler).follow("job-1"))
    assert [e.line.text for e in events if isinstance(e, Line)] == ["1", "2", "3"]
    assert [e.id for e in events if isinstance(e, Line)] == ["4.0", "4.1", "5.0"]
    assert [e.event.kind for e in events if isinstance(e, StepChange)] == ["setup"]
    assert events[-1] == Status("succeeded", final=True)
    assert "last-event-id" not in requests[0].headers
    assert requests[1].headers["last-event-id"] == "4.1"
    assert requests[1].url.params["follow"] == "true"


def test_follow_gives_up_after_its_reconnects_in_a_row():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b": heartbeat\n\n", headers={"content-type": "text/event-stream"})

    with pytest.raises(Unreachable, match="kept dropping"):
        list(client(handler).follow("job-1", reconnects=2))


def test_follow_raises_a_refusal_at_once():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(404, json={**PROBLEM, "status": 404, "code": "not_found", "detail": "no job job-1"})

    with pytest.raises(ApiError, match="no job job-1"):
        list(client(handler).follow("job-1"))
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("explicit", "env", "files", "expected"),
    [
        ("given", {"DRAFTSMAN_TOKEN": "env"}, {"data/api-token": "local"}, "given"),
        (None, {"DRAFTSMAN_TOKEN": "env"}, {"data/api-token": "local"}, "env"),
        (None, {"DRAFTSMAN_TOKEN_FILE": "{tmp}/t"}, {"t": "from-file\n", "data/api-token": "local"}, "from-file"),
        (None, {"DRAFTSMAN_DATA_DIR": "{tmp}/d"}, {"d/api-token": "data-dir", "data/api-token": "local"}, "data-dir"),
        (None, {}, {"data/api-token": "local\n"}, "local"),
        (None, {}, {"data/api-token": ""}, None),
        (None, {}, {}, None),
    ],
)
def test_find_token_looks_where_the_cli_looks(tmp_path: Path, monkeypatch, explicit, env, files, expected):
    for name in ("DRAFTSMAN_TOKEN", "DRAFTSMAN_TOKEN_FILE", "DRAFTSMAN_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("{tmp}", str(tmp_path)))
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert find_token(explicit, cwd=tmp_path) == expected


@pytest.mark.parametrize(("method", "decision"), [("approve", "approve"), ("reject", "reject")])
def test_a_decision_posts_to_the_approval_route_with_a_key(method, decision):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content), request.headers.get("idempotency-key")))
        return httpx.Response(200, json={"decision": decision, "by": "ops", "at": "2026-12-03T10:00:00Z", "comment": "why"})

    approval = getattr(client(handler), method)("job-1", "why")
    assert (approval.decision, approval.by) == (decision, "ops")
    assert seen[0][:2] == ("/v1/jobs/job-1/approval", {"decision": decision, "comment": "why"})
    assert seen[0][2]
