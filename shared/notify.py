"""Notifications through apprise (Telegram, Discord, Slack, email, ntfy, JSON webhooks...).

``install_notifications(settings, service)`` (after ``configure_logging``) attaches a ``NotificationHandler``
to the root logger: the structured events the code already logs (``log_event``) that matter to a trader -
fills, stop and target hits, LOST orders, liquidations, EXTERNAL activity, the kill switch and breakers, a
degraded AI, engine errors, the daily report - become short messages, sent by a ``Notifier``:

- on its own thread from a bounded queue: the caller (the trading loop) never waits for a receiver; a failing
  or hanging receiver is logged as ``notify_failed`` (WARNING) and never raises into the caller;
- only the kinds in NOTIFY_EVENTS; the same message at most once per NOTIFY_DEDUP_S;
- at most NOTIFY_MAX_PER_HOUR an hour: the rest is held back and later summed up in one message;
- every title and body scrubbed of every configured secret and of the notification URLs' own tokens;
- titled with the trading mode and the market (or the service): ``[real] BTC-PERP: Stop hit``.

The handler also counts the process's ERROR records: NOTIFY_ERROR_RATE_PER_MIN of them within a minute raise
one ``error_rate`` notification (at most one a minute).
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import apprise

from shared.config import NOTIFY_EVENT_KINDS, Settings
from shared.logs import REDACTED, log_event, scrub

logger = logging.getLogger(__name__)

TITLES = {
    "fill": "Fill",
    "stop": "Stop hit",
    "target": "Target hit",
    "lost": "Order LOST",
    "liquidation": "Liquidation",
    "external": "External activity",
    "kill_switch": "Kill switch",
    "breaker": "Breaker",
    "ai_degraded": "AI degraded",
    "engine_error": "Engine error",
    "error_rate": "Error rate",
    "service_down": "Service down",
    "daily_report": "Daily report",
}
HOUR_S = 3600.0
MINUTE_S = 60.0
MAX_BODY = 900  # chat services cut long messages anyway; a notification is a pointer, the logs have the rest
STOP_EXITS = frozenset({"stop_loss", "break_even", "trailing_stop"})
TARGET_ROLES = frozenset({"take_profit", "partial_take_profit"})
# records of these loggers are never turned into notifications (no feedback loop through a failing receiver)
IGNORED_LOGGERS = ("apprise", __name__)


def split_urls(value: str) -> list[str]:
    """NOTIFY_URLS: apprise URLs separated by commas and/or spaces."""
    return value.replace(",", " ").split()


def url_secrets(urls: Iterable[str]) -> list[str]:
    """The parts of notification URLs that are credentials (bot tokens, webhook ids and tokens, passwords):
    the whole URL, its authority and every long path segment or query value."""
    found: list[str] = []
    for url in urls:
        found.append(url)
        parts = urlsplit(url)
        found.append(parts.netloc)
        if "@" in parts.netloc:
            found.extend(parts.netloc.rsplit("@", 1)[0].split(":"))
        found.extend(segment for segment in parts.path.split("/") if len(segment) >= 8)
        found.extend(value for _, value in parse_qsl(parts.query) if len(value) >= 8)
    return found


@dataclass(frozen=True)
class Note:
    kind: str
    title: str
    body: str


class Notifier:
    """Sends notifications through apprise from a background thread; see the module docstring."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        service: str,
        mode: str,
        events: Iterable[str] = NOTIFY_EVENT_KINDS,
        dedup_s: float = 300.0,
        max_per_hour: int = 30,
        secrets: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
        queue_size: int = 200,
        tick_s: float = 1.0,
    ) -> None:
        self.service, self.mode = service, mode
        self.events = frozenset(events)
        self.dedup_s, self.max_per_hour = dedup_s, max_per_hour
        self._clock, self._tick_s = clock, tick_s
        values = {s for s in (*secrets, *url_secrets(urls)) if s and len(s) >= 4}
        self._secrets = sorted(values, key=len, reverse=True)
        # apprise's own log lines name its URLs (tokens): they are captured per call and scrubbed, never
        # passed on to the process's handlers as they are
        logging.getLogger("apprise").propagate = False
        self._apprise = apprise.Apprise()
        with apprise.LogCapture(level=logging.WARNING):
            for position, url in enumerate(urls, 1):
                if not self._apprise.add(url):
                    log_event(logger, "notify_url_invalid", logging.WARNING, position=position)
        self._lock = threading.Lock()
        self._last_sent: dict[tuple[str, str], float] = {}
        self._sent_times: deque[float] = deque()
        self._held: Counter[str] = Counter()
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Note | None] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    @property
    def targets(self) -> int:
        return len(self._apprise)

    # --- the caller's side (never blocks) ---------------------------------------------------------------
    def notify(self, kind: str, message: str, *, symbol: str | None = None) -> bool:
        """Queue one notification. False when it is not sent: a kind not in NOTIFY_EVENTS, a duplicate
        within the dedup window, over the hourly cap (held back for the summary), or the queue is full."""
        note = self.render(kind, message, symbol)
        if note is None or not self._admit(note):
            return False
        try:
            self._queue.put_nowait(note)
        except queue.Full:
            self.dropped += 1
            log_event(logger, "notify_dropped", logging.WARNING, kind=kind, reason="queue full")
            return False
        return True

    def render(self, kind: str, message: str, symbol: str | None = None) -> Note | None:
        """The note as it would leave (scrubbed), or None when ``kind`` is not to be sent."""
        if kind not in TITLES or kind not in self.events:
            return None
        title = f"[{self.mode}] {symbol or self.service}: {TITLES[kind]}"
        body = message if len(message) <= MAX_BODY else message[: MAX_BODY - 1] + "…"
        return Note(kind, self.scrub(title), self.scrub(body))

    def scrub(self, text: str) -> str:
        text = scrub(text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def _admit(self, note: Note) -> bool:
        now = self._clock()
        key = (note.kind, f"{note.title}\n{note.body}")
        with self._lock:
            last = self._last_sent.get(key)
            if last is not None and now - last < self.dedup_s:
                return False
            self._last_sent[key] = now
            if len(self._last_sent) > 1000:
                self._last_sent = {k: t for k, t in self._last_sent.items() if now - t < self.dedup_s}
            self._expire(now)
            if len(self._sent_times) >= self.max_per_hour:
                self._held[note.kind] += 1
                return False
            self._sent_times.append(now)
            return True

    def _expire(self, now: float) -> None:
        while self._sent_times and now - self._sent_times[0] >= HOUR_S:
            self._sent_times.popleft()

    # --- the sending thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                note = self._queue.get(timeout=self._tick_s)
            except queue.Empty:
                self._send_summary()
                continue
            try:
                if note is None:
                    return
                self._deliver(note)
                self._send_summary()
            finally:
                self._queue.task_done()

    def _send_summary(self) -> None:
        summary = self._summary()
        if summary is not None:
            self._deliver(summary)

    def _summary(self) -> Note | None:
        """One note for everything held back, once the hourly cap has room again."""
        now = self._clock()
        with self._lock:
            if not self._held:
                return None
            self._expire(now)
            if len(self._sent_times) >= self.max_per_hour:
                return None
            held, self._held = self._held, Counter()
            self._sent_times.append(now)
        count = sum(held.values())
        kinds = ", ".join(f"{n} {kind}" for kind, n in held.most_common())
        title = f"[{self.mode}] {self.service}: {count} notifications held back"
        body = (
            f"{count} notifications held back ({kinds}): more than {self.max_per_hour} an hour "
            "(NOTIFY_MAX_PER_HOUR). The logs and the dashboard have them all."
        )
        return Note("summary", self.scrub(title), self.scrub(body))

    def _deliver(self, note: Note) -> bool:
        """Send one note now (this thread, or the caller of ``send_now``); False (logged) if it failed."""
        detail = ""
        try:
            with apprise.LogCapture(level=logging.WARNING) as captured:
                ok = bool(self._apprise.notify(title=note.title, body=note.body))
                detail = captured.getvalue() if not ok else ""
        except Exception as exc:  # a notification never takes the process down
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self.delivered += 1
            return True
        self.failed += 1
        lines = [line.split(" - ", 2)[-1] for line in str(detail).strip().splitlines()]
        log_event(
            logger, "notify_failed", logging.WARNING, kind=note.kind,
            detail=self.scrub("; ".join(lines))[-300:] or "no receiver accepted it",
        )  # fmt: skip
        return False

    def send_now(self, kind: str, message: str, *, symbol: str | None = None) -> bool | None:
        """Send synchronously, bypassing dedup and the cap (the CLI). None when ``kind`` is not to be sent."""
        note = self.render(kind, message, symbol)
        return None if note is None else self._deliver(note)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far was sent (or failed); for tests and shutdown."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def close(self, timeout_s: float = 5.0) -> None:
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            return
        self._thread.join(timeout_s)


# --- log records -> notifications -------------------------------------------------------------------------
def _money(value: Any) -> str:
    try:
        return f"{float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)


def _daily_summary(fields: dict[str, Any]) -> str:
    day, path = fields.get("day", "?"), fields.get("path")
    text = f"Daily report {day}"
    try:
        report = json.loads(Path(str(path)).read_text()) if path else {}
    except (OSError, ValueError):
        report = {}
    that_day = (report.get("that_day") or {}).get("overall") if isinstance(report, dict) else None
    to_date = (report.get("to_date") or {}).get("overall") if isinstance(report, dict) else None
    if isinstance(that_day, dict):
        pnl = float(that_day.get("final_equity", 0)) - float(that_day.get("starting_equity", 0))
        text += (
            f": {that_day.get('trade_count', 0)} trades, {that_day.get('wins', 0)} won, PnL {pnl:+,.2f} USD"
            f" ({float(that_day.get('total_return') or 0):+.2%})"
        )
    else:
        text += ": no trade closed that day"
    if isinstance(to_date, dict):
        text += (
            f"; to date {to_date.get('trade_count', 0)} trades, equity {_money(to_date.get('final_equity'))}"
            f" ({float(to_date.get('total_return') or 0):+.2%})"
        )
    return text + (f". Report: {path}" if path else "")


def _details(fields: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in fields.items() if k != "alert")


def classify(
    event: str, fields: dict[str, Any], level: int, logger_name: str = "", exc_text: str = ""
) -> tuple[str, str | None, str] | None:
    """(kind, market or None, message) for a log record worth a notification, else None."""
    f = fields
    sym = str(f["symbol"]) if f.get("symbol") else None
    if event == "fill_booked":
        role, exit_kind = str(f.get("role") or "entry"), str(f.get("exit_kind") or "")
        kind = "stop" if role == "stop_loss" else "target" if role in TARGET_ROLES else "fill"
        what = exit_kind.replace("_", " ") or role.replace("_", " ")
        return kind, sym, f"{f.get('side')} {f.get('qty')} filled at {_money(f.get('price'))} ({what})"
    if event == "position_exit":
        exit_kind = str(f.get("exit") or "")
        if exit_kind in STOP_EXITS:
            return "stop", sym, f"{exit_kind.replace('_', ' ')} hit: {f.get('reason')}; closing the position"
        if exit_kind == "take_profit":
            return "target", sym, f"target hit: {f.get('reason')}; closing the position"
        return None  # other exits (level break, time, funding, kill switch) arrive as the fill / kill switch
    if event == "order_lost":
        lost = f"order {f.get('client_id')} is LOST: not found on the exchange; not resent, check it by hand"
        return "lost", sym, lost
    if event == "liquidated":
        return "liquidation", sym, "the position was LIQUIDATED by the exchange"
    if event == "liquidation_near":  # agent.engine.liquidation_alert: once per position
        return "liquidation", sym, f"liquidation near: {f.get('text')}"
    if event in ("external_activity", "position_drift"):
        return "external", sym, f"EXTERNAL activity: {f.get('reason')}; the agent leaves this market alone"
    if event == "position_drift_resolved":
        return "external", sym, "our positions and the exchange's agree again; the market is traded again"
    if event == "kill_switch":
        killed = (
            f"KILL SWITCH: {f.get('reason') or 'no reason given'}; {f.get('cancelled', 0)} orders "
            f"cancelled, {f.get('closed', 0)} positions closed; trading HALTED until reset"
        )
        return "kill_switch", None, killed
    if event == "trading_state":
        if f.get("cause") in ("kill", "manual"):
            return None  # a human did it (the kill switch has its own notification)
        state, until = f.get("state"), f.get("until")
        if state == "ACTIVE":
            return "breaker", None, "trading is ACTIVE again"
        moved = f"trading {state} ({f.get('cause')}): {f.get('reason')}" + (f"; until {until}" * bool(until))
        return "breaker", None, moved
    if event == "source_vetoed":  # Kelly shut a whole signal source out (agent.engine, once per source)
        return "breaker", None, f"signal source {f.get('source')} vetoed, no edge: {f.get('reason')}"
    if event == "ai_breaker_open":
        degraded = f"AI analyst {f.get('provider')} degraded: {f.get('error')}; fallback decides"
        return "ai_degraded", None, degraded
    if event == "ai_fallback":
        return "ai_degraded", None, f"AI analyst {f.get('provider')} not used: {f.get('reason')}"
    if event in ("health_engine_failed", "health_db_failed"):
        return "service_down", None, f"unhealthy: {f.get('reason') or f.get('error')}"
    if event == "daily_report":
        return "daily_report", None, _daily_summary(f)
    if level >= logging.ERROR and (logger_name.startswith("agent.engine") or f.get("alert")):
        detail = _details(f) or exc_text
        return "engine_error", sym, event + (f": {detail}" if detail else "")
    return None


class NotificationHandler(logging.Handler):
    """Turns log records into notifications (``classify``) and watches the rate of ERROR records."""

    def __init__(
        self,
        notifier: Notifier,
        service: str,
        error_rate_per_min: int = 20,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(logging.INFO)
        self.notifier, self.service = notifier, service
        self.error_rate_per_min = error_rate_per_min
        self._clock = clock
        self._errors: deque[float] = deque()
        self._rate_fired_at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name.startswith(IGNORED_LOGGERS):
                return
            event = record.getMessage()
            fields = getattr(record, "fields", None)
            fields = fields if isinstance(fields, dict) else {}
            if record.levelno >= logging.ERROR:
                self._count_error(event)
            exc_text = ""
            if record.exc_info and record.exc_info[1] is not None:
                exc_text = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            found = classify(event, fields, record.levelno, record.name, exc_text)
            if found is not None:
                kind, symbol, message = found
                self.notifier.notify(kind, message, symbol=symbol)
        except Exception:
            self.handleError(record)

    def _count_error(self, event: str) -> None:
        now = self._clock()
        self._errors.append(now)
        while self._errors and now - self._errors[0] >= MINUTE_S:
            self._errors.popleft()
        count = len(self._errors)
        if count < self.error_rate_per_min:
            return
        if self._rate_fired_at is not None and now - self._rate_fired_at < MINUTE_S:
            return
        self._rate_fired_at = now
        self.notifier.notify(
            "error_rate",
            f"{count} errors in the last minute in {self.service} (NOTIFY_ERROR_RATE_PER_MIN "
            f"{self.error_rate_per_min}); the latest: {event}. See the logs.",
        )


def build_notifier(settings: Settings, service: str, **options: Any) -> Notifier | None:
    """A Notifier for the settings, or None when NOTIFY_URLS or NOTIFY_EVENTS is empty."""
    urls = split_urls(settings.secret("notify_urls"))
    if not urls or not settings.notify_events:
        return None
    return Notifier(
        urls, service=service, mode=settings.trading_mode, events=settings.notify_events,
        dedup_s=settings.notify_dedup_s, max_per_hour=settings.notify_max_per_hour,
        secrets=settings.secret_values(), **options,
    )  # fmt: skip


def install_notifications(settings: Settings, service: str) -> Notifier | None:
    """Attach the notification handler to the root logger (call after ``configure_logging``, which replaces
    the root's handlers) and so to every logger of the process; each process (each gunicorn worker: create
    the app after the fork, no --preload) has its own sending thread. None when NOTIFY_URLS is empty.
    Calling it again keeps the handler installed. Records below the root's level (LOG_LEVEL) never reach
    it: fills, exits and the daily report are INFO."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, NotificationHandler):
            return handler.notifier
    notifier = build_notifier(settings, service)
    if notifier is None:
        return None
    root.addHandler(NotificationHandler(notifier, service, settings.notify_error_rate_per_min))
    atexit.register(notifier.close, 2.0)  # what is queued when the process stops still goes out
    log_event(logger, "notifications_on", service=service, targets=notifier.targets,
              events=sorted(notifier.events))  # fmt: skip
    return notifier


def notify_command(settings: Settings, event: str, message: str) -> int:
    """``bluefinai notify --event KIND MESSAGE``: send one notification now. 0 when sent, or when nothing
    is to be sent (NOTIFY_URLS unset, KIND not in NOTIFY_EVENTS); 1 when KIND is unknown or sending failed."""
    if event not in NOTIFY_EVENT_KINDS:
        print(f"unknown event {event!r}: use one of {', '.join(NOTIFY_EVENT_KINDS)}", file=sys.stderr)
        return 1
    notifier = build_notifier(settings, "bluefinai", tick_s=0.2)
    if notifier is None:
        print("NOTIFY_URLS (or NOTIFY_EVENTS) is empty: nothing sent", file=sys.stderr)
        return 0
    try:
        sent = notifier.send_now(event, message)
    finally:
        notifier.close(1.0)
    if sent is None:
        print(f"{event} is not in NOTIFY_EVENTS: nothing sent", file=sys.stderr)
        return 0
    if not sent:
        print("the notification could not be sent (see the notify_failed log line)", file=sys.stderr)
        return 1
    return 0
