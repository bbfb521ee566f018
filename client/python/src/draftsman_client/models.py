# Generated from docs/openapi.json by client/python/generate.sh: do not edit.

from __future__ import annotations

from typing import Annotated, Any, Dict, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypeAliasType


class Budget(BaseModel):
    """
    at a budget's gate: the limits the approver raised it to
    """

    model_config = ConfigDict(
        extra="allow",
    )
    cpuSeconds: Annotated[float | None, Field(gt=0.0, le=1000000000.0)] = None
    wallSeconds: Annotated[float | None, Field(gt=0.0, le=1000000000.0)] = None
    egressBytes: Annotated[int | None, Field(gt=0, le=1000000000000000)] = None


class Approval(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    decision: str
    by: str
    """
    who decided: an API token's name, sdk:IDENTITY, or timeout
    """
    at: AwareDatetime
    comment: str | None = None
    budget: Budget | None = None
    """
    at a budget's gate: the limits the approver raised it to
    """


class AuditEvent(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    type: str
    data: dict[str, Any]
    at: AwareDatetime


class AuditTrail(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    events: list[AuditEvent]


class GroupStarted(BaseModel):
    """
    the group's id and its attempts' job ids
    """

    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    parent: str
    jobs: list[str]


Variant = TypeAliasType(
    "Variant", Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
)


class Patch(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    bytes: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    truncated: bool


DurationMs = TypeAliasType(
    "DurationMs", Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
)


class Job(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    variant: Variant | None
    status: str
    validated: bool | None
    """
    every validation step passed; null when none ran
    """
    patch: Patch | None
    durationMs: DurationMs | None
    cpuSeconds: float | None
    """
    its ledger's CPU time (null when not measured)
    """
    egressBytes: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    """
    bytes through the egress proxy, either way
    """
    error: str | None = None


class GroupView(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    parent: str
    after: str
    best: str
    principal: str
    createdAt: AwareDatetime
    endedAt: AwareDatetime | None
    """
    when the last attempt ended
    """
    winner: str | None
    """
    the attempt the rule picked (null while undecided, or when none won)
    """
    jobs: list[Job]


class Health(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    status: str
    database: str
    disk: dict[str, Any] | None = None


FreeDiskMb = TypeAliasType(
    "FreeDiskMb", Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
)
"""
free disk where its workspaces live, when measured
"""


class Host(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    """
    DRAFTSMAN_HOST_ID of its workers
    """
    state: str
    """
    up: takes jobs; draining: takes none, its jobs still run; drained: takes none and holds none (its workers stop); silent: not heard from lately
    """
    capacity: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    """
    jobs it runs at once
    """
    running: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    """
    its jobs that run steps now
    """
    holding: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    """
    its jobs not ended (awaiting approval included): their workspaces are there
    """
    freeDiskMb: FreeDiskMb | None
    """
    free disk where its workspaces live, when measured
    """
    seenAt: str
    """
    its last heartbeat
    """
    startedAt: str


class HostList(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    hosts: list[Host]
    waiting: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    """
    jobs queued for a host with room
    """


class JobCancelling(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    status: Literal["cancelling"]


class JobRerun(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    rerunOf: str


class JobResumed(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    resumeOf: str
    from_: Annotated[str, Field(alias="from")]


SetupItem = TypeAliasType(
    "SetupItem", Annotated[str, Field(max_length=16384, min_length=1)]
)


class Loop(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    command: Annotated[str, Field(max_length=16384, min_length=1)]
    until: Annotated[str | None, Field(max_length=16384, min_length=1)] = None
    maxIterations: Annotated[int, Field(ge=1, le=1000)]
    startAt: Annotated[int | None, Field(ge=1, le=9007199254740991)] = None
    """
    The first iteration (1 when absent): a job resumed after its parent's loop step k goes on at k + 1 (POST /v1/jobs/{id}/resume sets it); past maxIterations, no loop step runs
    """


ValidateItem = TypeAliasType(
    "ValidateItem", Annotated[str, Field(max_length=16384, min_length=1)]
)


PublishItem = TypeAliasType(
    "PublishItem", Annotated[str, Field(max_length=16384, min_length=1)]
)


EnvAdditionalProperty = TypeAliasType(
    "EnvAdditionalProperty", Annotated[str, Field(max_length=32768)]
)


SecretsAdditionalProperty = TypeAliasType(
    "SecretsAdditionalProperty",
    Annotated[str, Field(pattern="^[a-z0-9][a-z0-9_.-]{0,63}$")],
)


PublishSecretsAdditionalProperty = TypeAliasType(
    "PublishSecretsAdditionalProperty",
    Annotated[str, Field(pattern="^[a-z0-9][a-z0-9_.-]{0,63}$")],
)


class Budget1(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    cpuSeconds: Annotated[float | None, Field(gt=0.0, le=1000000000.0)] = None
    """
    CPU time of the job's step containers, user and system
    """
    wallSeconds: Annotated[float | None, Field(gt=0.0, le=1000000000.0)] = None
    """
    from its first step
    """
    egressBytes: Annotated[int | None, Field(gt=0, le=1000000000000000)] = None
    """
    bytes through the egress proxy, either way
    """
    onExceed: str | None = None
    """
    fail (the default), or approval: wait for a person to raise the budget once, or reject
    """


class Approval1(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    before: str
    timeoutSeconds: Annotated[int | None, Field(ge=1, le=604800)] = None
    """
    how long the job waits for a decision (default a day); waiting does not count against jobSeconds
    """
    onTimeout: str | None = None
    """
    the decision when nobody decided in time (default reject)
    """


class Concurrency(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    key: Annotated[str, Field(max_length=128, min_length=1, pattern="^[\\x21-\\x7e]*$")]
    """
    `repo`, `principal`, or a name of your own shared by the jobs that use it
    """
    limit: Annotated[int, Field(ge=1, le=9007199254740991)]
    """
    jobs of this key at once (at most the server's ceiling)
    """


RestoreKey = TypeAliasType(
    "RestoreKey",
    Annotated[str, Field(max_length=256, min_length=1, pattern="^[\\x21-\\x7e]*$")],
)


class Cache(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    name: Annotated[str, Field(pattern="^[a-z0-9][a-z0-9_-]{0,31}$")]
    """
    npm, yarn, pip, go and xdg point those tools at the cache
    """
    key: Annotated[
        str,
        Field(
            examples=["npm-{{ hashFiles('package-lock.json') }}"],
            max_length=512,
            min_length=1,
        ),
    ]
    restoreKeys: Annotated[list[RestoreKey] | None, Field(max_length=8)] = None
    path: Annotated[str | None, Field(examples=["node_modules"])] = None
    """
    A directory of the workspace the cache is (node_modules, .venv): mounted there in setup, where it is saved from, and in every later step as the job's own copy, which is never saved
    """


class Snapshot(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    after: Annotated[str, Field(pattern="^(setup|loop-[1-9][0-9]{0,3})$")]
    when: str | None = None
    """
    always (the default): kept whatever the job does next; failed: kept for a resume, and given up when the job succeeds (forks may use it only while the job runs)
    """


class From(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    job: Annotated[str, Field(pattern="^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$")]
    after: Annotated[str, Field(pattern="^(setup|loop-[1-9][0-9]{0,3})$")]


Host1 = TypeAliasType("Host1", Annotated[str, Field(max_length=260, min_length=1)])


class Git(BaseModel):
    """
    git's credential helper gives git the placeholder for these hosts; the proxy swaps it inside git's Basic authorization
    """

    model_config = ConfigDict(
        extra="allow",
    )
    username: Annotated[
        str | None, Field(max_length=64, min_length=1, pattern="^[A-Za-z0-9._@-]+$")
    ] = None
    """
    the user name git sends with the placeholder as its password (default x-access-token)
    """


class Credential(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    secret: Annotated[str, Field(pattern="^[a-z0-9][a-z0-9_.-]{0,63}$")]
    hosts: Annotated[list[Host1], Field(max_length=20, min_length=1)]
    header: Annotated[
        str, Field(max_length=64, pattern="^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    ]
    format: Annotated[str | None, Field(max_length=256, pattern="^[\\x20-\\x7e]*$")] = (
        None
    )
    """
    the header value, `{value}` standing for the secret (default `{value}`)
    """
    env: Annotated[str, Field(pattern="^[A-Za-z_][A-Za-z0-9_]*$")]
    phases: Annotated[list[str] | None, Field(min_length=1)] = None
    """
    the phases whose steps hold the placeholder and whose requests get the value (default all)
    """
    git: Git | None = None
    """
    git's credential helper gives git the placeholder for these hosts; the proxy swaps it inside git's Basic authorization
    """


AllowItem = TypeAliasType("AllowItem", Annotated[str, Field(max_length=260)])


class Egress(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    allow: Annotated[list[AllowItem], Field(max_length=100)]


LabelsAdditionalProperty = TypeAliasType(
    "LabelsAdditionalProperty",
    Annotated[str, Field(max_length=128, pattern="^[\\x21-\\x7e]*$")],
)


class Timeouts(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    stepSeconds: Annotated[int | None, Field(ge=1, le=86400)] = None
    jobSeconds: Annotated[int | None, Field(ge=1, le=604800)] = None


class JobSpec(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    repo: Annotated[
        str,
        Field(
            examples=["https://example.com/org/repo.git"],
            max_length=2048,
            pattern="^https?://[A-Za-z0-9][A-Za-z0-9.-]*(:([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(/[^\\s]*)?$",
        ),
    ]
    commit: Annotated[str, Field(pattern="^[0-9a-fA-F]{40}$")]
    image: Annotated[
        str | None,
        Field(
            max_length=512,
            pattern="^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$",
        ),
    ] = None
    setup: Annotated[list[SetupItem] | None, Field(max_length=100)] = None
    loop: Loop | None = None
    validate_: Annotated[
        list[ValidateItem] | None, Field(alias="validate", max_length=100)
    ] = None
    publish: Annotated[list[PublishItem] | None, Field(max_length=100)] = None
    env: (
        dict[
            Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
            EnvAdditionalProperty,
        ]
        | None
    ) = None
    secrets: (
        dict[
            Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
            SecretsAdditionalProperty,
        ]
        | None
    ) = None
    publishSecrets: (
        dict[
            Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")],
            PublishSecretsAdditionalProperty,
        ]
        | None
    ) = None
    budget: Budget1 | None = None
    approval: Approval1 | None = None
    concurrency: Concurrency | None = None
    caches: Annotated[list[Cache] | None, Field(max_length=8)] = None
    snapshot: Snapshot | None = None
    from_: Annotated[From | None, Field(alias="from")] = None
    gitTokenSecret: Annotated[
        str | None, Field(pattern="^[a-z0-9][a-z0-9_.-]{0,63}$")
    ] = None
    credentials: Annotated[list[Credential] | None, Field(max_length=20)] = None
    egress: Egress | None = None
    labels: (
        dict[
            Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")],
            LabelsAdditionalProperty,
        ]
        | None
    ) = None
    timeouts: Timeouts | None = None


class JobStarted(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str


class Loop1(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    iterations: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    converged: bool


class Egress1(BaseModel):
    """
    what the steps did through the egress proxy (the single-job view only)
    """

    model_config = ConfigDict(
        extra="allow",
    )
    connections: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    denied: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    bytesIn: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    bytesOut: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]


PeakMemoryBytes = TypeAliasType(
    "PeakMemoryBytes", Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
)
"""
the largest memory peak of one step
"""


WorkspaceBytes = TypeAliasType(
    "WorkspaceBytes", Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
)
"""
the largest size of the workspace measured while a step ran
"""


class Ledger(BaseModel):
    """
    what the job cost, measured by Draftsman and the kernel (the single-job view only): docs/ledger.md
    """

    model_config = ConfigDict(
        extra="allow",
    )
    wallSeconds: float | None
    cpuSeconds: float | None
    """
    CPU time, user and system, of every step container (the engine's cgroup accounting); null when none was measured
    """
    peakMemoryBytes: PeakMemoryBytes | None
    """
    the largest memory peak of one step
    """
    steps: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    egressBytesIn: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    egressBytesOut: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    egressConnections: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    workspaceBytes: WorkspaceBytes | None
    """
    the largest size of the workspace measured while a step ran
    """


class CredentialUseItem(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    env: str
    secret: str
    host: str
    requests: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    firstAt: AwareDatetime
    lastAt: AwareDatetime


class Retrying(BaseModel):
    """
    an activity of the running job that failed and is being tried again: its attempt, the last error, when the next try starts (the single-job view only)
    """

    model_config = ConfigDict(
        extra="allow",
    )
    activity: str
    attempt: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    lastError: str | None
    nextAttemptAt: AwareDatetime | None


class Kept(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    kind: str
    """
    cache: a saved dependency cache; snapshot: a workspace kept after setup or a loop step
    """
    hostQueue: str
    """
    the task queue of the host whose engine holds it
    """
    host: str | None = None
    """
    that host's id, when it is known
    """
    scope: str
    """
    whose it is: repo=<url> principal=<name> (or repo=<url> alone, by DRAFTSMAN_CACHE_SCOPE)
    """
    name: str
    """
    the cache's name; for a kept workspace empty (kept after setup) or the loop step it was kept after (loop-2)
    """
    key: str
    """
    the cache's key; a workspace's: the hash of its setup, or the id of the job that kept it after a loop step
    """
    jobId: str
    """
    the job that saved it
    """
    commit: str
    """
    the commit of a kept workspace; empty for a cache
    """
    bytes: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    createdAt: str
    lastUsedAt: str
    """
    its last restore (or its save): the janitor evicts the least recently used past the budget
    """


class KeptList(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    caches: list[Kept]
    bytes: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    """
    their bytes together
    """


class LogLine(BaseModel):
    """
    a line of step output: an NDJSON line, or the data of a `line` event (whose id is <chunk>.<line>)
    """

    model_config = ConfigDict(
        extra="allow",
    )
    step: str
    """
    <kind>-<index>
    """
    stream: str
    time: AwareDatetime
    text: str


class LogStatusEvent(BaseModel):
    """
    the data of a `status` event (on connecting and on every change) and of the `end` event (the last: the job has ended)
    """

    model_config = ConfigDict(
        extra="allow",
    )
    status: str


class LogStepEvent(BaseModel):
    """
    the data of a `step` event: a step started or finished (then with its status and exit code)
    """

    model_config = ConfigDict(
        extra="allow",
    )
    __annotations__ = {
        "__pydantic_extra__": Dict[str, Any],
    }
    type: str
    kind: str
    index: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]


class Problem(BaseModel):
    """
    RFC 9457 problem details
    """

    model_config = ConfigDict(
        extra="allow",
    )
    type: str
    """
    /problems/<code>, served by the API
    """
    title: str
    status: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    detail: str
    instance: str
    """
    the request id (X-Request-Id)
    """
    code: str
    field: str | None = None
    """
    JSON path of the bad input
    """


class Session(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    principal: str
    scopes: list[str]
    csrfToken: str
    """
    send it as X-CSRF-Token with every request of the session that changes something
    """
    expiresAt: AwareDatetime


ExitCode = TypeAliasType(
    "ExitCode", Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
)


class OverBudget(BaseModel):
    """
    the limit of the job's budget the step was stopped at (its step_finished and budget_exceeded events say the same)
    """

    model_config = ConfigDict(
        extra="allow",
    )
    budget: str
    limit: float
    used: float


class StepView(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    kind: str
    index: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    """
    0-based for setup and validate; the iteration (1-based) for loop and until
    """
    status: str
    exitCode: ExitCode | None
    startedAt: AwareDatetime | None
    finishedAt: AwareDatetime | None
    durationMs: DurationMs | None = None
    oomKilled: bool | None = None
    """
    killed for exceeding its memory limit
    """
    logBytes: Annotated[
        int | None, Field(ge=-9007199254740991, le=9007199254740991)
    ] = None
    logTruncated: bool | None = None
    reason: str | None = None
    """
    why a failed step failed other than by its own exit (host_lost: its host was lost and the job moved; the step ran again there; budget_exceeded: stopped at the job's budget)
    """
    cpuSeconds: float | None = None
    """
    CPU time its processes used, user and system, from the kernel's accounting of its container
    """
    peakMemoryBytes: Annotated[
        int | None, Field(ge=-9007199254740991, le=9007199254740991)
    ] = None
    """
    the most memory its processes held at once
    """
    overBudget: OverBudget | None = None
    """
    the limit of the job's budget the step was stopped at (its step_finished and budget_exceeded events say the same)
    """
    paused: bool | None = None
    """
    frozen at the job's budget, waiting for a person's decision (onExceed approval)
    """


PeakMemoryBytes1 = TypeAliasType(
    "PeakMemoryBytes1", Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
)


class Total(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    jobs: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    wallSeconds: float
    cpuSeconds: float
    peakMemoryBytes: PeakMemoryBytes1 | None
    steps: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    egressBytesIn: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    egressBytesOut: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    egressConnections: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]


class ByPrincipalItem(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    principal: str
    jobs: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    wallSeconds: float
    cpuSeconds: float
    peakMemoryBytes: PeakMemoryBytes1 | None
    steps: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    egressBytesIn: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    egressBytesOut: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    egressConnections: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]


class Usage(BaseModel):
    """
    the jobs' ledgers summed: docs/ledger.md
    """

    model_config = ConfigDict(
        extra="allow",
    )
    from_: Annotated[str, Field(alias="from")]
    to: str
    principal: str | None
    """
    the principal asked for; null: every principal
    """
    label: str | None
    total: Total
    byPrincipal: list[ByPrincipalItem]


class WebhookCreated(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    url: str
    description: str | None
    events: list[str] | None
    createdBy: str
    createdAt: AwareDatetime
    secret: str
    """
    whsec_...: signs every delivery (Standard Webhooks); shown only now
    """


LastStatus = TypeAliasType(
    "LastStatus", Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
)


class WebhookDelivery(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    """
    the webhook-id header: the same on every attempt
    """
    endpointId: str
    eventType: str
    jobId: str
    status: str
    attempts: Annotated[int, Field(ge=-9007199254740991, le=9007199254740991)]
    nextAttemptAt: AwareDatetime | None
    lastStatus: LastStatus | None
    lastError: str | None
    createdAt: AwareDatetime
    deliveredAt: AwareDatetime | None


class WebhookDeliveryList(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    deliveries: list[WebhookDelivery]


class WebhookEndpoint(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    url: str
    description: str | None
    events: list[str] | None
    createdBy: str
    createdAt: AwareDatetime


class WebhookList(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    webhooks: list[WebhookEndpoint]


class WebhookSecret(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    secret: str
    """
    the new secret; the previous one keeps signing for 24 h
    """


class JobView(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    id: str
    status: str
    repo: str | None
    commit: str | None
    principal: str | None = None
    """
    who started the job: an API token's name, or sdk:IDENTITY
    """
    labels: dict[str, str] | None = None
    createdAt: AwareDatetime
    startedAt: AwareDatetime | None
    finishedAt: AwareDatetime | None
    steps: list[StepView]
    loop: Loop1 | None
    error: str | None = None
    patch: Patch | None = None
    waiting: str | None = None
    """
    why a queued job has not started yet
    """
    queuePosition: Annotated[
        int | None, Field(ge=-9007199254740991, le=9007199254740991)
    ] = None
    """
    a job waiting for a host with room: its place in the line (1: next), counted when asked
    """
    placement: Annotated[
        int | None, Field(ge=-9007199254740991, le=9007199254740991)
    ] = None
    """
    how many hosts the job was placed on, from 2: its host was lost and it runs again from the clone on another; steps are those of this placement
    """
    egress: Egress1 | None = None
    """
    what the steps did through the egress proxy (the single-job view only)
    """
    ledger: Ledger | None = None
    """
    what the job cost, measured by Draftsman and the kernel (the single-job view only): docs/ledger.md
    """
    credentialUse: list[CredentialUseItem] | None = None
    """
    requests the egress proxy sent with a credential, per variable and host, never the value (the single-job view only)
    """
    group: str | None = None
    """
    the group (best-of-N) the job is an attempt of: GET /v1/groups/{id}
    """
    stepsOmitted: Annotated[
        int | None, Field(ge=-9007199254740991, le=9007199254740991)
    ] = None
    retrying: Retrying | None = None
    """
    an activity of the running job that failed and is being tried again: its attempt, the last error, when the next try starts (the single-job view only)
    """


class JobPage(BaseModel):
    model_config = ConfigDict(
        extra="allow",
    )
    jobs: list[JobView]
    nextCursor: str | None
    """
    null on the last page; pass it as `cursor` for the next
    """
