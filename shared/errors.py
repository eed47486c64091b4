"""The platform's error hierarchy: each class tells the caller what to do next.

- ``InvalidInput``   reject the request; nothing was changed (carries field-level details).
- ``Rejected``       final: the exchange or risk refused; do not retry.
- ``Temporary``      retry later with backoff (only reads and cancels are retried automatically).
- ``UnknownOutcome`` the request may or may not have taken effect: reconcile by client id, never resend.
- ``Fatal``          stop trading and tell a human.
- ``ConfigError``    the configuration is invalid: refuse to start, one line per problem.
"""

from __future__ import annotations

from dataclasses import dataclass


class BluefinAIError(Exception):
    """Base class of every error the platform raises on purpose."""


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class InvalidInput(BluefinAIError):
    """Bad input: reject it with the details; nothing has been changed."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))


class Rejected(BluefinAIError):
    """A final refusal (exchange or risk). Do not retry."""


class Temporary(BluefinAIError):
    """A transient failure. Reads and cancels may be retried with backoff."""


class UnknownOutcome(BluefinAIError):
    """The request may have taken effect. Reconcile by client id; never resend blindly."""


class Fatal(BluefinAIError):
    """Trading must stop until a human looks."""


class ConfigError(BluefinAIError):
    """Invalid configuration: the service refuses to start."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))
