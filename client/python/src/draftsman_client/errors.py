"""What a call can raise: the API refused it (an RFC 9457 problem document), or the API
could not be reached."""

from __future__ import annotations

import httpx
from pydantic import ValidationError

from .models import Problem


class DraftsmanError(Exception):
    """Every error of this client."""


class Unreachable(DraftsmanError):
    """The API did not answer (connection refused, reset, timed out), or a followed stream
    kept dropping."""


class ApiError(DraftsmanError):
    """The API answered with an error. ``code`` and ``field`` are the problem document's
    (``problem`` has all of it), ``request_id`` the X-Request-Id to quote to an operator."""

    def __init__(self, status: int, detail: str, problem: Problem | None, request_id: str | None) -> None:
        super().__init__(f"{status} {problem.code + ': ' if problem else ''}{detail}")
        self.status = status
        self.detail = detail
        self.problem = problem
        self.code = problem.code if problem else None
        self.field = problem.field if problem else None
        self.request_id = request_id

    @classmethod
    def of(cls, answer: httpx.Response) -> ApiError:
        """The error of a read answer: its problem document, or (a proxy's page, say) its status."""
        request_id = answer.headers.get("x-request-id")
        try:
            problem = Problem.model_validate_json(answer.content)
        except ValidationError:
            return cls(answer.status_code, f"HTTP {answer.status_code}", None, request_id)
        return cls(answer.status_code, problem.detail, problem, request_id)
