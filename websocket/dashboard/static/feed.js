// The live event and log feed: the latest socket.io events as they arrive (type, time, a short text), the
// services' warnings and errors among them (``log`` events: the agent's WARNING+ log records), with a filter
// by type and a pause. At most MAX_EVENTS are kept (and drawn): memory does not grow with time. While
// paused, new events are kept (within the same bound) and drawn on resume.
(function () {
  "use strict";
  const MAX_EVENTS = 200;
  const TICKS = new Set(["market", "status", "risk", "services"]);  // frequent: hidden unless asked for
  const $ = (id) => document.getElementById(id);
  const num = (v) => (v === null || v === undefined || Number.isNaN(Number(v)) ? "—" : Number(v).toLocaleString(undefined, { maximumFractionDigits: 8 }));
  const events = [];  // newest last, at most MAX_EVENTS
  let seq = 0;
  let paused = false;
  let unseen = 0;
  let problems = 0;

  const SUMMARY = {
    signal: (d) => `#${d.id} ${d.symbol} ${d.action} from ${d.source}${d.strategy ? ` · ${d.strategy}` : ""} (${d.status})`,
    decision: (d) => `signal #${d.signal_id}: ${d.action} (${d.analyst}, confidence ${num(d.confidence)}) — ${d.risk_approved ? `approved ${num(d.quantity)}` : d.action === "hold" ? "no trade" : `vetoed: ${d.risk_reason || "no reason"}`}`,
    order: (d) => `${d.side} ${num(d.quantity)} ${d.symbol} ${String(d.role || d.type || "").replace(/_/g, " ")} ${d.status}${d.reason ? `: ${d.reason}` : ""}`,
    position: (d) => (Number(d.quantity) ? `${d.symbol} ${Number(d.quantity) > 0 ? "long" : "short"} ${num(Math.abs(d.quantity))} @ ${num(d.entry_price)}` : `${d.symbol} flat`),
    trade: (d) => `${d.symbol} ${d.side === "BUY" ? "long" : "short"} closed (${d.exit_reason}): PnL ${num(d.pnl)}`,
    market: (d) => `${d.symbol} ${num(d.price)}${d.stale ? " (stale)" : ""}`,
    status: (d) => `engine ${d.state}, equity ${num(d.equity)}${d.trading_state ? `, trading ${d.trading_state.state}` : ""}`,
    risk: (d) => `trading ${(d.state || {}).state || "?"}, drawdown ${num(((d.metrics || {}).drawdown || {}).current)}`,
    services: (d) => ((d && d.services) || []).map((s) => `${s.name} ${s.status}`).join(", "),
    snapshot: (d) => `snapshot: ${(d.orders || []).length} orders, ${(d.positions || []).length} positions`,
    log: (d) => {
      const skip = new Set(["ts", "level", "service", "logger", "event", "truncated"]);
      const fields = Object.entries(d).filter(([k]) => !skip.has(k)).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`);
      return `${d.service || "?"} ${d.event}${fields.length ? ` ${fields.join(" ")}` : ""}`;
    },
  };

  function summary(name, data) {
    const describe = SUMMARY[name];
    try {
      return describe ? describe(data || {}) : JSON.stringify(data).slice(0, 200);
    } catch (_) {
      return "(unreadable event)";
    }
  }

  function eventTime(data) {
    const iso = data && (data.ts || data.time || data.received_at || data.created_at || data.updated_at || data.closed_at);
    const moment = iso ? new Date(iso) : new Date();
    return Number.isNaN(moment.getTime()) ? new Date() : moment;
  }

  function shown(item) {
    const filter = $("feed-filter").value;
    if (filter === "*") return true;
    if (filter === "") return !TICKS.has(item.type);
    return item.type === filter;
  }

  function row(item) {
    const li = document.createElement("li");
    li.dataset.type = item.type;
    li.dataset.seq = item.seq;
    if (item.level) li.dataset.level = item.level;
    const when = document.createElement("time");
    when.className = "mono";
    when.textContent = item.time.toISOString().slice(11, 19);
    when.title = item.time.toISOString();
    const type = document.createElement("span");
    type.className = "feed-type";
    type.textContent = item.type === "log" ? item.level || "log" : item.type;
    const text = document.createElement("span");
    text.className = "feed-text";
    text.textContent = item.text;
    li.append(when, type, text);
    return li;
  }

  function redraw() {
    const list = $("feed");
    list.replaceChildren(...events.filter(shown).reverse().map(row));
    unseen = 0;
    count();
  }

  function count() {
    const drawn = $("feed").children.length;
    $("feed-count").textContent = paused ? `paused · ${unseen} new kept` : `${drawn} shown of the last ${events.length}`;
    const badge = $("feed-problems");
    badge.hidden = problems === 0;
    badge.dataset.count = problems;
    badge.textContent = `${problems} warning${problems === 1 ? "" : "s"} / error${problems === 1 ? "" : "s"}`;
  }

  function add(name, data) {
    seq += 1;
    const item = { seq, type: name, time: eventTime(data), text: summary(name, data) };
    if (name === "log") { item.level = String((data && data.level) || "warning"); problems += 1; }
    events.push(item);
    if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
    if (paused) { unseen = Math.min(MAX_EVENTS, unseen + 1); count(); return; }
    if (shown(item)) {
      const list = $("feed");
      list.insertBefore(row(item), list.firstChild);
      while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
    }
    count();
  }

  function togglePause() {
    paused = !paused;
    const button = $("feed-pause");
    button.textContent = paused ? "resume" : "pause";
    button.setAttribute("aria-pressed", String(paused));
    $("feed-panel").dataset.paused = String(paused);
    if (!paused) redraw(); else count();
  }

  let wired = false;
  const sockets = new WeakSet();
  function start(options) {
    if (!sockets.has(options.socket)) {  // a new socket (a token entered again): listen to it too
      sockets.add(options.socket);
      options.socket.onAny((name, data) => add(name, data));
    }
    if (wired) return;
    wired = true;
    $("feed-filter").addEventListener("change", redraw);
    $("feed-pause").addEventListener("click", togglePause);
  }

  window.bluefinaiPanels = window.bluefinaiPanels || [];
  window.bluefinaiPanels.push({ start });
  window.bluefinaiFeed = { add, size: () => events.length, max: MAX_EVENTS };
})();
