"""report.html's frame: the stylesheet (fits a 390 px phone: wide tables scroll inside their own box), the
interactive charts (TradingView's lightweight-charts v4, its standalone build inlined so the page works
offline, from a file or a blob) and the script that draws them from the JSON embedded in the page
(``<script type="application/json" id="report-data">``, from ``agent.backtest.chart_data``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

from shared.logs import log_event

CHARTS_FILE = "lightweight-charts.standalone.production.js"
logger = logging.getLogger(__name__)


def _dashboard_dir() -> Path:
    spec = importlib.util.find_spec("dashboard")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parents[2] / "websocket" / "dashboard"


def charts_library_path() -> Path:
    """Where the dashboard's npm packages put lightweight-charts' standalone build."""
    return _dashboard_dir() / "node_modules" / "lightweight-charts" / "dist" / CHARTS_FILE


@cache
def charts_library() -> str | None:
    """The library's JavaScript; None (logged once) when `npm ci --prefix websocket/dashboard` has not run."""
    path = charts_library_path()
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        log_event(
            logger,
            "charts_missing",
            logging.WARNING,
            path=str(path),
            hint="npm ci --prefix websocket/dashboard",
        )
        return None


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element (no "</" or "<!--" can close or confuse it)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


HERE = Path(__file__).resolve().parent
CSS = (HERE / "report.css").read_text(encoding="utf-8")
RENDER_JS = (HERE / "report.js").read_text(encoding="utf-8")


def scripts(data: Any) -> str:
    """The library, the embedded data and the renderer, for the end of <body>."""
    library = charts_library()
    parts = [] if library is None else [f"<script>{library}</script>"]
    parts.append(f'<script type="application/json" id="report-data">{script_json(data)}</script>')
    parts.append(f"<script>{RENDER_JS}</script>")
    return "\n".join(parts)
