"""RISK_TOLERANCE presets and the ``RiskPolicy`` every risk and position-management rule reads.

A preset sets every value; each has its own environment variable that overrides it (empty = preset).

| value (env var)                               | conservative | moderate | aggressive |
|-----------------------------------------------|--------------|----------|------------|
| MAX_POSITION_SIZE (notional / equity, per market) | 0.05     | 0.10     | 0.20       |
| RISK_PER_TRADE (equity lost at the stop)      | 0.005        | 0.01     | 0.02       |
| KELLY_FRACTION (of full Kelly)                | 0.25         | 0.5      | 0.75       |
| KELLY_MIN_TRADES (prior only below it)        | 30           | 20       | 15         |
| KELLY_PRIOR_TRADES (shrinkage weight)         | 50           | 30       | 20         |
| MAX_LEVERAGE (margin leverage per market)     | 3            | 5        | 10         |
| MAX_TOTAL_EXPOSURE (gross notional / equity)  | 0.5          | 1.0      | 2.0        |
| MAX_CORRELATED_EXPOSURE (group net / equity)  | 0.075        | 0.15     | 0.30       |
| MAX_OPEN_POSITIONS                            | 2            | 3        | 5          |
| MIN_CONFIDENCE                                | 0.65         | 0.55     | 0.50       |
| MIN_REWARD_RISK                               | 2.0          | 1.5      | 1.2        |
| MIN_LIQUIDATION_ATR (ATRs from entry)         | 10           | 6        | 4          |
| MAX_DAILY_LOSS (of start-of-day equity)       | 0.02         | 0.03     | 0.05       |
| MAX_DRAWDOWN (from the peak)                  | 0.10         | 0.15     | 0.25       |
| REDUCE_AT (share of a limit -> REDUCING)      | 0.6          | 0.75     | 0.9        |
| STOP_ATR_MULTIPLE (stop when none is given)   | 2.5          | 2.0      | 1.5        |
| TRAILING_STOP                                 | atr:3        | atr:3    | atr:2      |
| TRAILING_ACTIVATION_R                         | 1.0          | 1.0      | 1.5        |
| PARTIAL_TAKE_PROFITS (R:fraction)             | 1:0.5        | 1:0.5    | 2:0.33     |
| STAGNANT_EXIT_HOURS (0 = never)               | 12           | 24       | 48         |
| STAGNANT_MAX_R                                | 0.3          | 0.3      | 0.2        |
| FUNDING_EXIT_DAILY (cost / notional / day)    | 0.0005       | 0.001    | 0.002      |

KELLY_FRACTION=0 turns the Kelly rule off (no Kelly size, no veto for a source without an edge).
Kelly reads the closed trades of the decision's own signal source: a source that has lost is not allowed to
stop one that wins. Below KELLY_MIN_TRADES trades of that source it is the prior alone.

Streaks (of the whole account): after 2 losses in a row the risk-based sizes halve, after 3 or more they
quarter; after 3 wins in a row they grow by a quarter (caps never move).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from shared.config import Settings, parse_partial_take_profits, parse_trailing_stop


@dataclass(frozen=True)
class RiskPolicy:
    max_position_size: float
    risk_per_trade: float
    kelly_fraction: float
    kelly_prior_trades: int
    kelly_min_trades: int
    max_leverage: float
    max_total_exposure: float
    max_correlated_exposure: float
    max_open_positions: int
    min_confidence: float
    min_reward_risk: float
    min_liquidation_atr: float
    max_daily_loss: float
    max_drawdown: float
    reduce_at: float
    stop_atr_multiple: float
    trailing_stop: str
    trailing_activation_r: float
    partial_take_profits: str
    stagnant_exit_hours: float
    stagnant_max_r: float
    funding_exit_daily: float
    # the holding time a decision is expected to have: its expected funding enters reward/risk and sizing
    funding_horizon_hours: float = 8.0
    liquidation_alert_atr: float = 3.0  # an open position's mark within this many ATRs of its liquidation
    leverage: float = 3.0  # margin leverage of new positions (DEFAULT_LEVERAGE, capped by max_leverage)
    atr_timeframe: str = "15m"
    exit_on_reversal: bool = True
    level_break_exit: bool = True
    review_exits: bool = True
    review_minutes: float = 60.0  # AI_REVIEW_MINUTES: an AI analyst's review timer per position (0 = off)
    review_funding_rate: float = 0.0005  # REVIEW_FUNDING_RATE: the |rate| that calls an AI review (0 = off)
    tolerance: str = "moderate"
    # the Kelly prior while the journal is short: win rate and payoff (average win / average loss)
    prior_win_rate: float = 0.5
    prior_payoff: float = 1.5

    @property
    def trailing(self) -> tuple[str, float] | None:
        return parse_trailing_stop(self.trailing_stop)

    @property
    def partials(self) -> tuple[tuple[float, float], ...]:
        return parse_partial_take_profits(self.partial_take_profits)

    @property
    def order_leverage(self) -> float:
        return min(self.leverage, self.max_leverage)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PRESETS: dict[str, RiskPolicy] = {
    "conservative": RiskPolicy(
        max_position_size=0.05, risk_per_trade=0.005, kelly_fraction=0.25,
        kelly_prior_trades=50, kelly_min_trades=30,
        max_leverage=3, max_total_exposure=0.5, max_correlated_exposure=0.075, max_open_positions=2,
        min_confidence=0.65, min_reward_risk=2.0, min_liquidation_atr=10, max_daily_loss=0.02,
        max_drawdown=0.10, reduce_at=0.6, stop_atr_multiple=2.5, trailing_stop="atr:3",
        trailing_activation_r=1.0, partial_take_profits="1:0.5", stagnant_exit_hours=12, stagnant_max_r=0.3,
        funding_exit_daily=0.0005, tolerance="conservative",
    ),
    "moderate": RiskPolicy(
        max_position_size=0.10, risk_per_trade=0.01, kelly_fraction=0.5,
        kelly_prior_trades=30, kelly_min_trades=20,
        max_leverage=5, max_total_exposure=1.0, max_correlated_exposure=0.15, max_open_positions=3,
        min_confidence=0.55, min_reward_risk=1.5, min_liquidation_atr=6, max_daily_loss=0.03,
        max_drawdown=0.15, reduce_at=0.75, stop_atr_multiple=2.0, trailing_stop="atr:3",
        trailing_activation_r=1.0, partial_take_profits="1:0.5", stagnant_exit_hours=24, stagnant_max_r=0.3,
        funding_exit_daily=0.001, tolerance="moderate",
    ),
    "aggressive": RiskPolicy(
        max_position_size=0.20, risk_per_trade=0.02, kelly_fraction=0.75,
        kelly_prior_trades=20, kelly_min_trades=15,
        max_leverage=10, max_total_exposure=2.0, max_correlated_exposure=0.30, max_open_positions=5,
        min_confidence=0.50, min_reward_risk=1.2, min_liquidation_atr=4, max_daily_loss=0.05,
        max_drawdown=0.25, reduce_at=0.9, stop_atr_multiple=1.5, trailing_stop="atr:2",
        trailing_activation_r=1.5, partial_take_profits="2:0.33", stagnant_exit_hours=48,
        stagnant_max_r=0.2, funding_exit_daily=0.002, tolerance="aggressive",
    ),
}  # fmt: skip

OVERRIDABLE = (
    "max_position_size", "risk_per_trade", "kelly_fraction", "kelly_prior_trades", "kelly_min_trades",
    "max_leverage",
    "max_total_exposure", "max_correlated_exposure", "max_open_positions", "min_confidence",
    "min_reward_risk", "min_liquidation_atr", "max_daily_loss", "max_drawdown", "reduce_at",
    "stop_atr_multiple", "trailing_stop", "trailing_activation_r", "partial_take_profits",
    "stagnant_exit_hours", "stagnant_max_r", "funding_exit_daily",
)  # fmt: skip


def policy_from_settings(settings: Settings) -> RiskPolicy:
    """The preset of RISK_TOLERANCE with every variable that is set applied over it."""
    overrides: dict[str, Any] = {
        name: getattr(settings, name) for name in OVERRIDABLE if getattr(settings, name) is not None
    }
    return replace(
        PRESETS[settings.risk_tolerance],
        **overrides,
        leverage=settings.default_leverage,
        atr_timeframe=settings.risk_atr_timeframe,
        exit_on_reversal=settings.exit_on_reversal,
        level_break_exit=settings.level_break_exit,
        review_exits=settings.review_exits,
        review_minutes=settings.ai_review_minutes,
        review_funding_rate=settings.review_funding_rate,
        funding_horizon_hours=settings.funding_horizon_hours,
        liquidation_alert_atr=settings.liquidation_alert_atr,
    )
