"""Walk-forward windows and the overfitting rule of ``bluefinai optimize``.

The period is cut into ``folds`` consecutive, equal segments; in each, the first ``train_frac`` is the
in-sample window the search scores a trial on and the rest the out-of-sample window that only validates
the best parameters (never seen by the search). Boundaries fall on candle opens.

The overfitting rule compares the best trial's mean out-of-sample objective with its mean in-sample one:
maximised objectives warn when out-of-sample keeps less than ``OOS_KEEP`` (half) of a positive in-sample
value (a sign flip included), or when in-sample is not positive at all; minimised ones (max_drawdown) warn
when out-of-sample is more than ``1 / OOS_KEEP`` (twice) the in-sample value. The warning names the folds
that break the rule on their own too.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.optimize.objectives import Direction
from shared.errors import FieldProblem, InvalidInput

OOS_KEEP = 0.5
MIN_FOLD_CANDLES = 60  # an in-sample or out-of-sample window shorter than this is refused


@dataclass(frozen=True)
class Fold:
    number: int  # from 1
    train: tuple[datetime, datetime]  # [start, end)
    test: tuple[datetime, datetime]


def make_folds(begin: int, end: int, folds: int, train_frac: float, step_s: int) -> list[Fold]:
    """``folds`` windows over [begin, end) (epoch seconds), boundaries on multiples of ``step_s``."""
    problems = []
    if folds < 1:
        problems.append(FieldProblem("--folds", f"must be at least 1, got {folds}"))
    if not 0 < train_frac < 1:
        problems.append(
            FieldProblem("--train-frac", f"must be between 0 and 1 (exclusive), got {train_frac}")
        )
    if problems:
        raise InvalidInput(problems)
    segment = (end - begin) / folds
    out: list[Fold] = []
    for n in range(folds):
        start = begin + round(n * segment / step_s) * step_s
        stop = end if n == folds - 1 else begin + round((n + 1) * segment / step_s) * step_s
        split = start + round((stop - start) * train_frac / step_s) * step_s
        shortest = min(split - start, stop - split) // step_s
        if shortest < MIN_FOLD_CANDLES:
            raise InvalidInput(
                [
                    FieldProblem(
                        "--folds",
                        f"fold {n + 1} has a window of {shortest} candles (< {MIN_FOLD_CANDLES}): use fewer "
                        "folds, a --train-frac nearer 0.5 or more data",
                    )
                ]
            )
        out.append(Fold(n + 1, (_utc(start), _utc(split)), (_utc(split), _utc(stop))))
    return out


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _breaks(in_sample: float, out_of_sample: float, direction: Direction) -> bool:
    if direction == "maximize":
        return in_sample <= 0 or out_of_sample < OOS_KEEP * in_sample
    return out_of_sample > in_sample / OOS_KEEP if in_sample > 0 else out_of_sample > 0


def overfitting_warning(
    objective: str, direction: Direction, pairs: Sequence[tuple[float, float | None]]
) -> str | None:
    """The warning for the best trial's (in-sample, out-of-sample) values per fold; None when all is well.
    A fold whose out-of-sample value is undefined counts as broken."""
    if not pairs:
        return None
    broken = [n for n, (i, o) in enumerate(pairs, 1) if o is None or _breaks(i, o, direction)]
    defined = [(i, o) for i, o in pairs if o is not None]
    mean_is = statistics.fmean(i for i, _ in pairs)
    if len(defined) < len(pairs):
        return (
            f"{objective} is undefined out of sample in fold(s) {', '.join(map(str, broken))}: the best "
            "parameters could not be validated there"
        )
    mean_oos = statistics.fmean(o for _, o in defined)
    if not _breaks(mean_is, mean_oos, direction):
        return None
    folds = f" (fold(s) {', '.join(map(str, broken))} on their own)" if broken else ""
    if direction == "maximize" and mean_is <= 0:
        found = f"the best in-sample {objective} is {mean_is:.4g}"
        return f"{found} (not positive): no parameters worth trusting were found"
    rule = (
        f"keeps less than {OOS_KEEP:.0%} of" if direction == "maximize" else f"is more than {1 / OOS_KEEP:g}x"
    )
    return (
        f"likely overfit: out-of-sample {objective} {mean_oos:.4g} {rule} the in-sample "
        f"{mean_is:.4g}{folds}; prefer fewer parameters, wider ranges of good values or more data"
    )
