// BluefinAI Trader dashboard: renders agent events pushed over socket.io. Every value is inserted with
// textContent, never as HTML.
(function () {
  "use strict";
  const MAX_ROWS = 50;
  const $ = (id) => document.getElementById(id);
  const fmt = (value, digits = 2) =>
    value === null || value === undefined || Number.isNaN(Number(value)) ? "—"
      : Number(value).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "");

  function takeToken() {
    const match = window.location.hash.match(/token=([^&]+)/);
    if (match) {
      localStorage.setItem("bluefinai.token", decodeURIComponent(match[1]));
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return localStorage.getItem("bluefinai.token");
  }

  function setConnection(state, text) {
    const el = $("connection-state");
    el.dataset.state = state;
    el.textContent = text || state;
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

  const sideClass = (side) => (String(side).toUpperCase() === "BUY" || side === "buy" ? "buy" : "sell");
  const pnlClass = (v) => (Number(v) > 0 ? "pos" : Number(v) < 0 ? "neg" : "");

  const render = {
    market(d) {
      const el = $(`price-${d.symbol}`);
      if (el) { el.textContent = fmt(d.price); }
      const t = $(`price-time-${d.symbol}`);
      if (t) t.textContent = `${time(d.time)} UTC`;
      showSource(d.source);
    },
    signal(d) {
      upsert("signals", d.id, "data-signal-id", (r) => {
        cell(r, d.id); cell(r, d.symbol); cell(r, d.action, sideClass(d.action === "close" ? "" : d.action));
        cell(r, d.strategy ? `${d.source} · ${d.strategy}` : d.source); cell(r, d.status); cell(r, time(d.received_at), "mono");
      });
    },
    decision(d) {
      upsert("decisions", d.signal_id, "data-signal-id", (r) => {
        cell(r, d.signal_id); cell(r, d.action); cell(r, fmt(d.confidence));
        cell(r, d.risk_approved ? `approved ${d.quantity}` : "vetoed", d.risk_approved ? "pos" : "neg");
        cell(r, d.risk_approved ? d.rationale : `${d.rationale} — ${d.risk_reason}`, "wrap");
      });
    },
    order(d) {
      upsert("orders", d.client_id, "data-client-id", (r) => {
        cell(r, d.signal_id); cell(r, d.symbol); cell(r, d.side, sideClass(d.side)); cell(r, d.quantity);
        cell(r, fmt(d.price)); cell(r, d.status, `status-${d.status}`); cell(r, d.client_id, "mono");
        cell(r, time(d.created_at), "mono");
      });
    },
    position(d) {
      const body = document.querySelector("#positions tbody");
      const existing = body.querySelector(`tr[data-symbol="${CSS.escape(d.symbol)}"]`);
      if (!Number(d.quantity)) { if (existing) existing.remove(); return; }
      upsert("positions", d.symbol, "data-symbol", (r) => {
        cell(r, d.symbol); cell(r, d.quantity > 0 ? "LONG" : "SHORT", d.quantity > 0 ? "buy" : "sell");
        cell(r, Math.abs(d.quantity)); cell(r, fmt(d.entry_price)); cell(r, fmt(d.mark_price));
        cell(r, fmt(d.unrealized_pnl), pnlClass(d.unrealized_pnl)); cell(r, fmt(d.realized_pnl), pnlClass(d.realized_pnl));
      });
    },
    trade(d) {
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
      if (d.state === "paused") showBanner("paused", `Trading paused: ${d.reason}`);
      else if ($("banner").dataset.kind === "paused") showBanner("", "");
      if (d.feed) showSource(Object.values(d.feed)[0], Object.values(d.stale || {}).some(Boolean));
      Object.entries(d.prices || {}).forEach(([symbol, price]) => {
        const el = $(`price-${symbol}`);
        if (el && price !== null) el.textContent = fmt(price);
      });
    },
    snapshot(d) {
      [...(d.trades || [])].reverse().forEach(render.trade);
      [...(d.orders || [])].reverse().forEach(render.order);
      [...(d.signals || [])].reverse().forEach(render.signal);
      (d.positions || []).forEach(render.position);
    },
  };

  const SOURCE_NOTES = {
    replay: "Replayed prices: real candles from a file, not the live market.",
    synthetic: "Synthetic prices: a generated random walk for demos, not a real market.",
  };

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
    if ($("banner").dataset.kind === "paused") return;
    if (stale) showBanner("stale", "Market data is stale: no new prices are arriving. New entries are blocked.");
    else showBanner("source", SOURCE_NOTES[source] || "");
  }

  function connect(token) {
    $("token-form").hidden = true;
    setConnection("connecting", "connecting…");
    const socket = io({ auth: { token }, transports: ["websocket", "polling"] });
    socket.on("connect", () => setConnection("connected", "live"));
    socket.on("disconnect", () => setConnection("disconnected", "disconnected"));
    socket.on("connect_error", (err) => {
      if (err && err.message === "unauthorized") {
        socket.disconnect();
        localStorage.removeItem("bluefinai.token");
        setConnection("unauthorized", "unauthorized: wrong API token");
        $("token-form").hidden = false;
      } else {
        setConnection("disconnected", "disconnected, retrying…");
      }
    });
    Object.keys(render).forEach((name) => socket.on(name, (data) => render[name](data)));
    window.bluefinaiSocket = socket;
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (token) { localStorage.setItem("bluefinai.token", token); connect(token); }
  });

  const token = takeToken();
  if (token) { connect(token); } else { setConnection("disconnected", "no API token"); $("token-form").hidden = false; }
})();
