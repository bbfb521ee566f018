"""Python client of the Draftsman HTTP API. The models are generated from its OpenAPI
document (generate.sh); the client is :class:`Draftsman`."""

from . import models
from .client import DEFAULT_URL, Draftsman, FollowEvent, Line, Status, StepChange, find_token
from .errors import ApiError, DraftsmanError, Unreachable
from .models import JobSpec, JobView, LogLine, Problem

__all__ = [
    "DEFAULT_URL",
    "ApiError",
    "Draftsman",
    "DraftsmanError",
    "FollowEvent",
    "JobSpec",
    "JobView",
    "Line",
    "LogLine",
    "Problem",
    "Status",
    "StepChange",
    "Unreachable",
    "find_token",
    "models",
]
