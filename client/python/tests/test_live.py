"""The client against a running Draftsman: test/e2e/python-client.e2e.ts starts the stack
and a git server on 127.0.0.1, then runs these with DRAFTSMAN_URL, DRAFTSMAN_TOKEN,
DRAFTSMAN_TEST_REPO and DRAFTSMAN_TEST_COMMIT set."""

from __future__ import annotations

import os
import uuid

import pytest

from draftsman_client import ApiError, Draftsman, JobSpec, Line, Status, StepChange

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def api():
    missing = [v for v in ("DRAFTSMAN_URL", "DRAFTSMAN_TOKEN", "DRAFTSMAN_TEST_REPO", "DRAFTSMAN_TEST_COMMIT") if not os.environ.get(v)]
    if missing:
        pytest.skip(f"no live API: {', '.join(missing)} not set")
    with Draftsman() as client:
        yield client


def spec(**steps) -> dict:
    return {"repo": os.environ["DRAFTSMAN_TEST_REPO"], "commit": os.environ["DRAFTSMAN_TEST_COMMIT"], **steps}


def test_submit_follow_and_wait(api: Draftsman):
    job_id = api.submit(spec(setup=["for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done"], validate=["echo checked >&2"]))
    events = list(api.follow(job_id))
    lines = [e.line for e in events if isinstance(e, Line)]
    assert [(l.step, l.stream, l.text) for l in lines] == [("setup-0", "stdout", f"line {i}") for i in range(1, 6)] + [
        ("validate-0", "stderr", "checked")
    ]
    finished = [(e.event.kind, e.event.index) for e in events if isinstance(e, StepChange) and e.event.type == "step_finished"]
    assert ("setup", 0) in finished and ("validate", 0) in finished
    assert events[-1] == Status("succeeded", final=True)

    job = api.wait(job_id)
    assert (job.status, [s.kind for s in job.steps]) == ("succeeded", ["clone", "setup", "validate"])
    assert job.finishedAt is not None and [s.exitCode for s in job.steps if s.kind != "clone"] == [0, 0]
    assert [l.text for l in api.logs(job_id, step="setup-0")] == [f"line {i}" for i in range(1, 6)]
    types = [e.type for e in api.events(job_id)]
    assert types[0] == "created" and "finished" in types
    assert job_id in {j.id for j in api.jobs(commit=os.environ["DRAFTSMAN_TEST_COMMIT"], status="succeeded")}


def test_a_model_spec_and_the_patch(api: Draftsman):
    job = api.run(JobSpec.model_validate(spec(loop={"command": "echo from-python > py.txt", "maxIterations": 1}, labels={"client": "python"})))
    assert job.status == "succeeded"
    assert job.labels == {"client": "python"}
    assert job.patch is not None and job.patch.bytes > 0
    patch = api.patch(job.id)
    assert "+++ b/py.txt" in patch and "+from-python" in patch


def test_cancel_a_running_job(api: Draftsman):
    job_id = api.submit(spec(setup=["echo started; sleep 300"]))
    for event in api.follow(job_id):
        if isinstance(event, Line) and event.line.text == "started":
            break
    assert api.cancel(job_id, "from python").status == "cancelling"
    job = api.wait(job_id, timeout=60)
    assert job.status == "cancelled"
    with pytest.raises(ApiError) as late:
        api.cancel(job_id)
    assert late.value.status == 409


def test_one_idempotency_key_one_job_and_rerun(api: Draftsman):
    key = f"python-{uuid.uuid4()}"
    first = api.submit(spec(validate=["true"]), idempotency_key=key)
    assert api.submit(spec(validate=["true"]), idempotency_key=key) == first
    assert api.wait(first).status == "succeeded"
    again = api.rerun(first)
    assert again.rerunOf == first and again.id != first
    assert api.wait(again.id).status == "succeeded"


def test_a_job_waits_for_approval_and_goes_on_when_approved(api: Draftsman):
    job_id = api.submit(spec(validate=["echo validated"], approval={"before": "validate", "timeoutSeconds": 300}))
    for event in api.follow(job_id):
        if isinstance(event, Status) and event.status == "awaiting_approval":
            break
    assert api.job(job_id).status == "awaiting_approval"
    approval = api.approve(job_id, "looks right")
    assert (approval.decision, approval.by, approval.comment) == ("approve", "admin", "looks right")
    with pytest.raises(ApiError) as conflict:
        api.reject(job_id)
    assert (conflict.value.status, conflict.value.code) == (409, "approval_conflict")
    assert api.wait(job_id).status == "succeeded"
    assert [e.type for e in api.events(job_id) if e.type in ("awaiting_approval", "approved")] == ["awaiting_approval", "approved"]


def test_refusals_are_problem_documents(api: Draftsman):
    with pytest.raises(ApiError) as bad:
        api.submit({"repo": os.environ["DRAFTSMAN_TEST_REPO"], "comit": "x"})
    assert bad.value.status == 400 and bad.value.request_id
    assert bad.value.problem is not None and bad.value.problem.instance == bad.value.request_id
    with pytest.raises(ApiError) as missing:
        api.job("job-does-not-exist")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    with pytest.raises(ApiError) as anonymous:
        Draftsman(api.url, "not-a-token", retries=0).job("job-does-not-exist")
    assert anonymous.value.status == 401


def test_fork_a_kept_setup_and_resume_a_failed_job(api: Draftsman):
    parent = api.run(
        spec(
            setup=["echo ready > ready.txt"],
            snapshot={"after": "setup", "when": "failed"},
            loop={"command": 'echo "$TRY" > out.txt', "maxIterations": 1},
            validate=["grep -q good out.txt"],
        )
    )
    assert parent.status == "failed"
    started = api.fork(parent.id, after="setup", variants=[{"env": {"TRY": "good"}}, {"env": {"TRY": "bad"}}], best="first-validated")
    assert started.parent == parent.id and len(started.jobs) == 2
    group = api.wait_group(started.id, timeout=120)
    assert group.winner == started.jobs[0]
    assert {j.id: (j.status, j.validated) for j in group.jobs}[started.jobs[0]] == ("succeeded", True)

    resumed = api.resume(parent.id, loop={"command": "echo good > out.txt"})
    assert (resumed.resumeOf, resumed.from_) == (parent.id, "setup")
    job = api.wait(resumed.id)
    assert (job.status, [s.kind for s in job.steps]) == ("succeeded", ["loop", "validate"])
    with pytest.raises(ApiError) as refused:
        api.resume(resumed.id)
    assert refused.value.status == 409


def test_the_ledger_and_usage(api: Draftsman):
    label = f"ledger-{uuid.uuid4().hex[:8]}"
    job = api.run(spec(setup=["perl -e 'while ((times)[0] + (times)[1] < 0.5) {}'"], labels={"run": label}))
    assert job.status == "succeeded" and job.ledger is not None
    assert job.ledger.steps == 2 and job.ledger.cpuSeconds is not None and job.ledger.cpuSeconds >= 0.45
    usage = api.usage(label=f"run={label}")
    assert usage.total.jobs == 1 and usage.total.cpuSeconds == pytest.approx(job.ledger.cpuSeconds, abs=0.001)
