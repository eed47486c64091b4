"""The platform's error hierarchy: each class tells the caller what to do next.

- ``InvalidInput``   reject the request; nothing was changed (carries field-level details as data:
                     ``problems``, never to be parsed back out of the message). Subclasses name the input:
                     ``UnknownSymbol`` (shared.symbols), ``BookError`` (an order book),
                     ``CandleFileError`` (a candle or funding file).
- ``Rejected``       final: the exchange or risk refused; do not retry. ``Conflict``: the thing is there
                     already (a unique key taken: an idempotency key, a client id, a fill), nothing changed.
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


class InvalidInput(BluefinAIError, ValueError):
    """Bad input: reject it with the details; nothing has been changed. Made from field problems, or from
    one message about the input as a whole (``FIELD`` names it: a subclass's kind of input)."""

    FIELD = "input"

    def __init__(self, problems: list[FieldProblem] | str) -> None:
        if isinstance(problems, str):
            self.problems = [FieldProblem(self.FIELD, problems)]
            super().__init__(problems)
            return
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))

    def details(self) -> list[dict[str, str]]:
        """The problems as an API answer's ``details``."""
        return [p.as_dict() for p in self.problems]


class Rejected(BluefinAIError):
    """A final refusal (exchange or risk). Do not retry."""


class Conflict(Rejected):
    """A unique key is taken (an idempotency key, a client id, a fill's trade id): it is there already and
    the transaction changed nothing."""


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
