// BluefinAI Trader dashboard: renders agent events pushed over socket.io, and talks to the agent API
// (kill switch, trading state, performance) at the same origin. Every value is inserted with textContent,
// never as HTML.
(function () {
  "use strict";
  const MAX_ROWS = 50;
  const PERFORMANCE_EVERY_MS = 15000;
  const TOKEN_KEY = "bluefinai.token";
  const $ = (id) => document.getElementById(id);
  const missing = (value) => value === null || value === undefined || value === "" || Number.isNaN(Number(value));
  const fmt = (value, digits = 2) =>
    missing(value) ? "—"
      : Number(value).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const pct = (fraction, digits = 2) => (missing(fraction) ? "—" : `${fmt(Number(fraction) * 100, digits)}%`);
  const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "");
  const minute = (iso) => time(iso).slice(0, 16);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

  function takeToken() {
    const match = window.location.hash.match(/token=([^&]+)/);
    if (match) {
      localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return localStorage.getItem(TOKEN_KEY);
  }

  function setConnection(state, text) {
    const el = $("connection-state");
    el.dataset.state = state;
    el.textContent = text || state;
  }

  function setText(id, text, className) {
    const el = $(id);
    if (!el) return;
    el.textContent = text === null || text === undefined ? "" : String(text);
    if (className !== undefined) el.className = className;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  // Insert or replace a row keyed by `key` in table `tableId`, newest first.
  function upsert(tableId, key, attr, fill) {
    const body = document.querySelector(`#${tableId} tbody`);
    let row = body.querySelector(`tr[${attr}="${CSS.escape(String(key))}"]`);
    const fresh = document.createElement("tr");
    fresh.setAttribute(attr, String(key));
    fill(fresh);
    if (row) { body.replaceChild(fresh, row); } else { body.insertBefore(fresh, body.firstChild); }
    fresh.classList.add("flash");
    while (body.rows.length > MAX_ROWS) body.deleteRow(body.rows.length - 1);
    return fresh;
  }

  // Replace every row of a table (tables re-sent whole every few seconds: no flash).
  function replaceRows(tableId, items, fill, emptyText) {
    const body = document.querySelector(`#${tableId} tbody`);
    const rows = items.map((item) => { const r = document.createElement("tr"); fill(r, item); return r; });
    if (!rows.length) {
      const r = document.createElement("tr");
      r.className = "empty";
      const td = cell(r, emptyText);
      td.colSpan = document.querySelectorAll(`#${tableId} thead th`).length;
      rows.push(r);
    }
    body.replaceChildren(...rows);
  }

  const sideClass = (side) => (String(side).toUpperCase() === "BUY" || side === "buy" ? "buy" : "sell");
  const pnlClass = (v) => (Number(v) > 0 ? "pos" : Number(v) < 0 ? "neg" : "");

  // --- banners --------------------------------------------------------------------------------------------
  const SOURCE_NOTES = {
    replay: "Replayed prices: real candles from a file, not the live market.",
    synthetic: "Synthetic prices: a generated random walk for demos, not a real market.",
  };

  // The data-source note (one element, #banner).
  function showBanner(kind, text) {
    const banner = $("banner");
    banner.dataset.kind = kind;
    banner.textContent = text;
    banner.hidden = !text;
  }

  function showSource(source, stale) {
    if (!source) return;
    const badge = $("feed-source");
    badge.hidden = false;
    badge.textContent = source === "replay" ? "replayed prices" : source === "synthetic" ? "synthetic prices" : `${source} prices`;
    if (stale) showBanner("stale", "Market data is stale: no new prices are arriving. New entries are blocked.");
    else showBanner("source", SOURCE_NOTES[source] || "");
  }

  // Alerts (one element per kind in #alerts, id alert-<kind>); an empty text removes it.
  function setAlert(kind, text) {
    const box = $("alerts");
    let el = $(`alert-${kind}`);
    if (!text) { if (el) el.remove(); return; }
    if (!el) {
      el = document.createElement("div");
      el.id = `alert-${kind}`;
      el.className = "banner alert";
      el.dataset.kind = kind;
      box.appendChild(el);
    }
    el.textContent = text;
  }

  // --- trading state, risk ------------------------------------------------------------------------------
  function tradingStateText(ts) {
    if (ts.state === "ACTIVE") return "ACTIVE";
    const until = ts.until ? `until ${minute(ts.until)} UTC` : "until reset";
    return `${ts.state}: ${ts.reason || ts.cause || "no reason given"} (${until})`;
  }

  function renderTradingState(ts) {
    if (!ts || !ts.state) return;
    const badge = $("trading-state");
    badge.dataset.state = ts.state;
    badge.textContent = tradingStateText(ts);
    const since = ts.since ? ` since ${time(ts.since)} UTC` : "";
    badge.title = ts.state === "ACTIVE" ? `trading ACTIVE${since}` : `${ts.reason || ts.state}${since}`;
    $("reset-active").hidden = ts.state === "ACTIVE";
    document.querySelectorAll("#state-control button[data-state]").forEach((b) => {
      b.setAttribute("aria-pressed", String(b.dataset.state === ts.state));
    });
    $("state-control").dataset.state = ts.state;
    if (!("daily_pnl" in ts)) return;
    if (!ts.day || !Number(ts.day_start_equity)) {
      // the breakers have not folded a candle yet: there is no start-of-day equity to compare with
      setText("risk-daily-pnl", "—", "value");
      setText("risk-daily-return", "no start-of-day equity yet");
      return;
    }
    setText("risk-daily-pnl", fmt(ts.daily_pnl), `value ${pnlClass(ts.daily_pnl)}`);
    setText("risk-daily-return", `${pct(ts.daily_return)} today (${ts.day})`);
  }

  const LIMIT_FORMATS = {
    pct: (v) => pct(v, 2),
    times: (v) => (missing(v) ? "—" : `${fmt(v, 0)}×`),
    int: (v) => (missing(v) ? "—" : String(Math.round(Number(v)))),
    text: (v) => (v === null || v === undefined || v === "" ? "—" : String(v)),
  };

  function renderPositionsRisk(positions) {
    replaceRows("risk-positions", positions, (r, p) => {
      r.dataset.symbol = p.symbol;
      cell(r, p.symbol); cell(r, p.quantity, Number(p.quantity) > 0 ? "buy" : "sell"); cell(r, fmt(p.mark));
      cell(r, fmt(p.notional)); cell(r, fmt(p.liquidation_price), "liq-price");
      cell(r, pct(p.liquidation_distance_pct)); cell(r, missing(p.liquidation_distance_atr) ? "—" : `${fmt(p.liquidation_distance_atr, 1)} ATR`);
      // funding_cost_per_day: positive = the position pays
      cell(r, fmt(p.funding_cost_per_day), missing(p.funding_cost_per_day) ? "" : pnlClass(-p.funding_cost_per_day));
    }, "no open positions");
  }

  function renderTail(metrics, held) {
    const day = (metrics.var_es_usd || {}).day;
    [["var-95", "var_historical_95"], ["var-99", "var_historical_99"], ["es-95", "es_historical_95"], ["es-99", "es_historical_99"]]
      .forEach(([id, key]) => setText(id, day ? fmt(day[key]) : "—"));
    const used = metrics.hourly_returns_used || 0;
    let note;
    if (day) note = `From ${plural(used, "hourly return")}; parametric (Gaussian) VaR 95% ${fmt(day.var_parametric_95)}, 99% ${fmt(day.var_parametric_99)}.`;
    else if (held) note = `VaR / ES: needs more history (${plural(used, "hourly return")} so far).`;
    else note = "VaR / ES: no open positions, nothing at risk.";
    setText("risk-var-note", note);
    $("risk-var").dataset.available = day ? "true" : "false";
  }

  function countVetoes() {
    const body = document.querySelector("#decisions tbody");
    const vetoed = body.querySelectorAll('tr[data-verdict="vetoed"]').length;
    setText("risk-vetoes", vetoed, `value ${vetoed ? "neg" : ""}`);
    setText("risk-vetoes-detail", `of ${plural(body.rows.length, "decision")} shown`);
  }

  // An open position's mark and unrealised PnL follow the market between fills (the agent's formula:
  // (mark - entry) x signed quantity).
  function markPosition(symbol, price) {
    if (price === null || price === undefined) return;
    const row = document.querySelector(`#positions tbody tr[data-symbol="${CSS.escape(symbol)}"]`);
    if (!row) return;
    const unrealised = (Number(price) - Number(row.dataset.entry)) * Number(row.dataset.quantity);
    const mark = row.querySelector("td.mark");
    const pnl = row.querySelector("td.unrealised");
    mark.textContent = fmt(price);
    pnl.textContent = fmt(unrealised);
    pnl.className = `unrealised ${pnlClass(unrealised)}`.trim();
  }

  // --- services (health, CPU, memory; pushed by the websocket service every ~10 s) ---------------------------
  const bytes = (n) => {
    if (missing(n)) return "—";
    const units = ["B", "KiB", "MiB", "GiB"];
    let value = Number(n); let unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${fmt(value, unit ? 1 : 0)} ${units[unit]}`;
  };

  function renderServices(d) {
    const services = (d && d.services) || [];
    if (!services.length) return;
    replaceRows("service-health", services, (r, s) => {
      r.dataset.service = s.name;
      r.dataset.status = s.status;
      cell(r, s.name);
      const status = cell(r, s.detail ? `${s.status}: ${s.detail}` : s.status, `health-${s.status}`);
      status.dataset.field = "status";
      cell(r, missing(s.cpu_percent) ? "—" : `${fmt(s.cpu_percent, 1)} %`, "num").dataset.field = "cpu";
      cell(r, bytes(s.rss_bytes), "num").dataset.field = "memory";
      cell(r, s.workers, "num");
      cell(r, time(s.checked_at), "mono");
    }, "no reading");
  }

  // --- socket.io events --------------------------------------------------------------------------------
  const render = {
    services: renderServices,
    market(d) {
      const el = $(`price-${d.symbol}`);
      if (el) { el.textContent = fmt(d.price); }
      markPosition(d.symbol, d.price);
      const t = $(`price-time-${d.symbol}`);
      if (t) t.textContent = `${time(d.time)} UTC`;
      showSource(d.source, d.stale);  // a market event must not hide the stale banner the status raised
    },
    signal(d) {
      if (window.bluefinaiTables && !window.bluefinaiTables.accepts("signals")) return;
      upsert("signals", d.id, "data-signal-id", (r) => {
        cell(r, d.id); cell(r, d.symbol); cell(r, d.action, sideClass(d.action === "close" ? "" : d.action));
        cell(r, d.strategy ? `${d.source} · ${d.strategy}` : d.source); cell(r, d.status); cell(r, time(d.received_at), "mono");
        cell(r, signalFields(d.fields), "mono");
      });
    },
    decision(d) {
      if (window.bluefinaiTables && !window.bluefinaiTables.accepts("decisions")) return;
      const hold = d.action === "hold";
      const verdict = d.risk_approved ? "approved" : hold ? "hold" : "vetoed";
      upsert("decisions", d.signal_id, "data-signal-id", (r) => {
        r.dataset.verdict = verdict;
        if (d.id !== undefined && d.id !== null) { r.dataset.decisionId = d.id; r.classList.add("clickable"); }
        cell(r, d.signal_id); cell(r, d.action); cell(r, fmt(d.confidence));
        cell(r, verdict === "approved" ? `approved ${d.quantity}` : verdict === "hold" ? "no trade" : "vetoed",
          verdict === "approved" ? "pos" : verdict === "vetoed" ? "neg" : "");
        const td = cell(r, "", "wrap");
        if (verdict === "vetoed") {
          const reason = document.createElement("div");
          reason.className = "veto-reason";
          reason.textContent = `Risk: ${d.risk_reason || "no reason given"}`;
          td.appendChild(reason);
        }
        const rationale = document.createElement("div");
        rationale.className = "rationale";
        rationale.textContent = d.rationale || "";
        td.appendChild(rationale);
        td.title = verdict === "vetoed" ? `Risk: ${d.risk_reason}\n\n${d.rationale || ""}` : d.rationale || "";
      });
      countVetoes();
    },
    order(d) {
      if (window.bluefinaiTables && !window.bluefinaiTables.accepts("orders")) return;
      upsert("orders", d.client_id, "data-client-id", (r) => {
        const price = !missing(d.price) ? fmt(d.price)
          : !missing(d.trigger_price) ? `trigger ${fmt(d.trigger_price)}`
            : !missing(d.limit_price) ? `limit ${fmt(d.limit_price)}` : "—";
        cell(r, d.signal_id); cell(r, d.symbol); cell(r, d.side, sideClass(d.side));
        cell(r, d.role ? String(d.role).replace(/_/g, " ") : ""); cell(r, d.quantity);
        cell(r, price); cell(r, d.status, `status-${d.status}`); cell(r, d.client_id, "mono");
        cell(r, time(d.created_at), "mono");
        if (window.bluefinaiActions) window.bluefinaiActions.orderCell(r, d);
      });
    },
    position(d) {
      if (window.bluefinaiTables && !window.bluefinaiTables.accepts("positions")) return;
      const body = document.querySelector("#positions tbody");
      const existing = body.querySelector(`tr[data-symbol="${CSS.escape(d.symbol)}"]`);
      if (!Number(d.quantity)) { if (existing) existing.remove(); return; }
      upsert("positions", d.symbol, "data-symbol", (r) => {
        r.dataset.quantity = d.quantity; r.dataset.entry = d.entry_price;
        cell(r, d.symbol); cell(r, d.quantity > 0 ? "LONG" : "SHORT", d.quantity > 0 ? "buy" : "sell");
        cell(r, Math.abs(d.quantity)); cell(r, fmt(d.entry_price)); cell(r, fmt(d.mark_price), "mark");
        cell(r, fmt(d.unrealized_pnl), `unrealised ${pnlClass(d.unrealized_pnl)}`.trim());
        cell(r, fmt(d.realized_pnl), pnlClass(d.realized_pnl));
        if (window.bluefinaiActions) window.bluefinaiActions.positionCell(r, d);
      });
    },
    trade(d) {
      performanceSoon();
      if (window.bluefinaiTables && !window.bluefinaiTables.accepts("trades")) return;
      upsert("trades", d.id, "data-trade-id", (r) => {
        cell(r, d.symbol); cell(r, d.side === "BUY" ? "LONG" : "SHORT", sideClass(d.side)); cell(r, d.quantity);
        cell(r, fmt(d.entry_price)); cell(r, fmt(d.exit_price)); cell(r, fmt(d.pnl), pnlClass(d.pnl));
        cell(r, d.exit_reason); cell(r, time(d.closed_at), "mono");
      });
    },
    status(d) {
      $("engine-state").textContent = `engine: ${d.state}`;
      $("equity").textContent = fmt(d.equity);
      $("balance").textContent = `balance ${fmt(d.balance)}`;
      const u = $("unrealized"); u.textContent = fmt(d.unrealized_pnl); u.className = `value ${pnlClass(d.unrealized_pnl)}`;
      $("fees").textContent = `fees paid ${fmt(d.fees_paid)}`;
      setAlert("paused", d.state === "paused" ? `Trading paused: ${d.reason || "no reason given"}` : "");
      setAlert("analyst", d.analyst_degraded
        ? `Analyst ${d.analyst || "?"} degraded: ${d.analyst_problem || "no detail"} — the fallback decides`
        : "");
      renderTradingState(d.trading_state);
      if (d.feed) showSource(Object.values(d.feed)[0], Object.values(d.stale || {}).some(Boolean));
      Object.entries(d.prices || {}).forEach(([symbol, price]) => {
        const el = $(`price-${symbol}`);
        if (el && price !== null) el.textContent = fmt(price);
        markPosition(symbol, price);
      });
    },
    risk(d) {
      const state = d.state || {};
      const metrics = d.metrics || {};
      const limits = d.limits || {};
      renderTradingState(state);
      setText("risk-equity", fmt(metrics.equity));
      setText("risk-peak", state.peak_equity ? `peak ${fmt(state.peak_equity)}` : "");
      const dd = metrics.drawdown || {};
      setText("risk-drawdown", pct(dd.current), `value ${pnlClass(dd.current)}`);
      setText("risk-drawdown-detail", `max ${pct(dd.max_to_date)} · 24 h 95% ${pct(dd.projected_24h_95)}`);
      const exposure = metrics.exposure || {};
      setText("risk-exposure", fmt(exposure.gross));
      setText("risk-exposure-detail", `${pct(exposure.gross_of_equity, 1)} of equity · net ${fmt(exposure.net)}`);
      const positions = metrics.positions || [];
      renderTail(metrics, positions.length > 0);
      renderPositionsRisk(positions);
      document.querySelectorAll("#risk-limits [data-limit]").forEach((el) => {
        const format = LIMIT_FORMATS[el.dataset.format] || LIMIT_FORMATS.text;
        el.textContent = format(limits[el.dataset.limit]);
      });
    },
    // agent.engine.liquidation_alert: a banner while a position's mark is near its liquidation price
    liquidation_alert(d) {
      const side = Number(d.quantity) > 0 ? "long" : "short";
      setAlert(`liquidation-${d.symbol}`, d.near
        ? `Liquidation near: ${d.symbol} ${side} ${Math.abs(Number(d.quantity))}, mark ${fmt(d.mark)} is ${fmt(d.distance_atr)} ATRs from the liquidation price ${fmt(d.liquidation)} (LIQUIDATION_ALERT_ATR ${d.threshold_atr})`
        : "");
    },
    snapshot(d) {
      // the trades and signals tables load their page from the agent API when they can (same journal)
      if (window.bluefinaiTables) { window.bluefinaiTables.loadAll(); return; }
      [...(d.trades || [])].reverse().forEach(render.trade); [...(d.signals || [])].reverse().forEach(render.signal);
      [...(d.orders || [])].reverse().forEach(render.order);
      [...(d.decisions || [])].reverse().forEach(render.decision);
      (d.positions || []).forEach(render.position);
    },
  };

  // --- agent API: kill switch, trading state, performance ----------------------------------------------
  async function callApi(path, body) {
    const token = localStorage.getItem(TOKEN_KEY);
    if (!token) throw new Error("no API token: enter it in the form first");
    const init = { method: body === undefined ? "GET" : "POST", cache: "no-store", headers: { Authorization: `Bearer ${token}` } };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new Error(`could not reach the agent API (${(err && err.message) || err})`);
    }
    if (response.status === 401) throw new Error("the agent API refused the API token (401): check API_TOKEN");
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const detail = data && data.error ? `: ${data.error}` : "";
      const fields = data && Array.isArray(data.details) ? ` (${data.details.map((x) => `${x.field}: ${x.message}`).join("; ")})` : "";
      throw new Error(`the agent API answered ${response.status}${detail}${fields}`);
    }
    if (data === null) throw new Error("the agent API answered without JSON");
    return data;
  }

  function controlMessage(kind, text) {
    const el = $("control-result");
    el.dataset.kind = kind;
    el.textContent = text;
    el.hidden = !text;
  }

  function setBusy(busy) {
    $("kill-switch").disabled = busy;
    $("reset-active").disabled = busy;
    document.querySelectorAll("#state-control button[data-state]").forEach((b) => { b.disabled = busy; });
  }

  async function killSwitch() {
    const close = $("kill-close").checked;
    const question = close
      ? "KILL SWITCH\n\nHalt all trading (HALTED until a manual reset), cancel every working order AND CLOSE EVERY OPEN POSITION at market?"
      : "KILL SWITCH\n\nHalt all trading (HALTED until a manual reset) and cancel working entry orders?\nOpen positions and their protective orders are kept (tick \"also close positions\" to close them).";
    if (!window.confirm(question)) { controlMessage("info", "Kill switch not sent."); return; }
    setBusy(true);
    controlMessage("info", "Kill switch: sending…");
    try {
      const result = await callApi("/api/control/kill", {
        close_positions: close, reason: close ? "kill switch (dashboard, closing positions)" : "kill switch (dashboard)",
      });
      const cancelled = (result.cancelled_orders || []).length;
      const closed = (result.closed_positions || []).length;
      const failed = (result.failed_cancels || []).length + (result.positions_not_closed || []).length;
      const missed = failed ? `; ${plural(failed, "action")} failed (see the API answer)` : "";
      controlMessage(result.state === "HALTED" ? "halted" : "info",
        `${String(result.state).toLowerCase()}: ${plural(cancelled, "order")} cancelled, ${plural(closed, "position")} closed${missed}`);
      performanceSoon();
    } catch (err) {
      controlMessage("error", `Kill switch failed: ${err.message}`);
    } finally {
      setBusy(false);
    }
  }

  async function resetActive() {
    if (!window.confirm("Reset trading to ACTIVE?\n\nThe breakers count afresh from the current equity and new entries are allowed again.")) return;
    setBusy(true);
    try {
      const result = await callApi("/api/control/state", { state: "ACTIVE", reason: "reset from the dashboard" });
      renderTradingState(result);
      controlMessage("ok", `reset: trading is ${result.state}`);
    } catch (err) {
      controlMessage("error", `Reset failed: ${err.message}`);
    } finally {
      setBusy(false);
    }
  }

  // the three trading states, switched by hand (POST /api/control/state), each confirmed first
  const STATE_QUESTIONS = {
    ACTIVE: "Switch trading to ACTIVE?\n\nAnything the risk rules approve may trade; the breakers count afresh from the current equity.",
    REDUCING: "Switch trading to REDUCING (reduce-only)?\n\nOnly orders that shrink exposure go out: closes and exits. No new entries.",
    HALTED: "Switch trading to HALTED?\n\nNo new exposure at all until a manual reset. Working orders and positions are kept (the kill switch cancels them).",
  };

  async function switchState(state) {
    if ($("state-control").dataset.state === state) { controlMessage("info", `Trading is already ${state}.`); return; }
    if (!window.confirm(STATE_QUESTIONS[state])) { controlMessage("info", `Switch to ${state}: not sent.`); return; }
    setBusy(true);
    controlMessage("info", `Switch to ${state}: sending…`);
    try {
      const result = await callApi("/api/control/state", { state, reason: `set to ${state} from the dashboard` });
      renderTradingState(result);
      controlMessage(result.state === "HALTED" ? "halted" : "ok", `trading is ${result.state}${result.reason ? ` (${result.reason})` : ""}`);
    } catch (err) {
      controlMessage("error", `Switch to ${state} failed: ${err.message}`);
    } finally {
      setBusy(false);
    }
  }

  // the alert's fields without a column of their own (market_position, contracts, order_id, ...), as sent
  function signalFields(fields) {
    return Object.entries(fields || {}).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
  }

  // /api/performance's vetoes: the count by rule, and the signal sources Kelly vetoed (no edge)
  function renderVetoes(v) {
    const rules = Object.entries((v && v.by_rule) || {});
    setText("perf-vetoes", rules.length ? `vetoes: ${rules.map(([rule, n]) => `${rule} ${n}`).join(" · ")}` : "vetoes: none");
    const sources = (v && v.sources_vetoed) || [];
    setText("perf-sources-vetoed", sources.length ? `sources vetoed (no edge): ${sources.map((s) => `${s.source} (${s.vetoes})`).join(", ")}` : "");
  }

  function renderPerformance(p) {
    renderVetoes(p && p.vetoes);
    if (window.bluefinaiBreakdowns) window.bluefinaiBreakdowns.render(p || {});
    const o = (p && p.overall) || {};
    setText("perf-trades", missing(o.trade_count) ? "—" : String(o.trade_count));
    setText("perf-win-rate", pct(o.win_rate, 1));
    setText("perf-return", pct(o.total_return), `value ${pnlClass(o.total_return)}`);
    setText("perf-sharpe", fmt(o.sharpe));
    setText("perf-max-dd", pct(o.max_drawdown), `value ${pnlClass(o.max_drawdown)}`);
    setText("perf-expectancy", missing(o.expectancy_r) ? "—" : `${fmt(o.expectancy_r)} R`, `value ${pnlClass(o.expectancy_r)}`);
  }

  let performanceBusy = false;
  async function refreshPerformance() {
    if (performanceBusy || !localStorage.getItem(TOKEN_KEY)) return;
    performanceBusy = true;
    const status = $("perf-status");
    try {
      renderPerformance(await callApi("/api/performance"));
      status.dataset.kind = "ok";
      status.textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC · every ${PERFORMANCE_EVERY_MS / 1000} s`;
    } catch (err) {
      status.dataset.kind = "error";
      status.textContent = `Performance unavailable: ${err.message}`;
    } finally {
      performanceBusy = false;
    }
  }

  let performanceTimer = null;
  function performanceSoon() {
    clearTimeout(performanceTimer);
    performanceTimer = setTimeout(refreshPerformance, 500);
  }

  let performanceInterval = null;
  function startPerformance() {
    refreshPerformance();
    if (performanceInterval === null) performanceInterval = setInterval(refreshPerformance, PERFORMANCE_EVERY_MS);
  }

  // --- wiring ----------------------------------------------------------------------------------------------
  function connect(token) {
    $("token-form").hidden = true;
    setConnection("connecting", "connecting…");
    const transports = (document.body.dataset.transports || "websocket,polling").split(",");
    const socket = io({ auth: { token }, transports });
    socket.on("connect", () => {
      setConnection("connected", "live");
      socket.emit("services", {}, renderServices);  // the latest reading now; the next ones are pushed
    });
    socket.on("disconnect", () => setConnection("disconnected", "disconnected"));
    socket.on("connect_error", (err) => {
      if (err && err.message === "unauthorized") {
        socket.disconnect();
        localStorage.removeItem(TOKEN_KEY);
        setConnection("unauthorized", "unauthorized: wrong API token");
        $("token-form").hidden = false;
      } else {
        setConnection("disconnected", "disconnected, retrying…");
      }
    });
    Object.keys(render).forEach((name) => socket.on(name, (data) => render[name](data)));
    window.bluefinaiSocket = socket;
    startPerformance();
    if (window.bluefinaiCharts) window.bluefinaiCharts.start({ api: callApi, socket });
    if (window.bluefinaiTables) window.bluefinaiTables.start({ api: callApi, socket });
    // the panels in their own files (algos, event feed) register here and get the API and the socket
    (window.bluefinaiPanels || []).forEach((panel) => panel.start({ api: callApi, socket }));
  }

  $("kill-switch").addEventListener("click", killSwitch);
  $("reset-active").addEventListener("click", resetActive);
  document.querySelectorAll("#state-control button[data-state]").forEach((b) => b.addEventListener("click", () => switchState(b.dataset.state)));
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (token) { localStorage.setItem(TOKEN_KEY, token); connect(token); }
  });

  // for tests and debugging: the renderers of the socket.io events, and of /api/performance
  window.bluefinaiRender = render;
  window.bluefinaiRenderPerformance = renderPerformance;
  window.bluefinaiCountVetoes = countVetoes;

  const token = takeToken();
  if (token) { connect(token); } else { setConnection("disconnected", "no API token"); $("token-form").hidden = false; }
})();
