// BluefinAI Trader dashboard: every table (signals, closed trades, orders, decisions, positions, fills,
// funding) a page at a time, filtered, from the agent API (/api/tables/<name>). On page 1 without filters the tables stay live (socket.io
// rows go on top); while a trader browses (a filter or a later page) live rows do not mix in: page 1 of the
// filtered view reloads instead.
(function () {
  "use strict";
  const RELOAD_DELAY_MS = 300;
  const LIVE_RECOUNT_MS = 2000;  // live rows go on top at once; the page (and its count) is read again after
  const $ = (id) => document.getElementById(id);
  const fmt = (v, digits = 2) => (v === null || v === undefined || v === "" || Number.isNaN(Number(v)) ? "—"
    : Number(v).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "");
  function cells(row, values) {
    values.forEach(([text, className]) => {
      const td = document.createElement("td");
      td.textContent = text === null || text === undefined ? "" : String(text);
      if (className) td.className = className;
      row.appendChild(td);
    });
  }
  // rows of the tables without a live event of their own (fills, funding): drawn here, oldest first on top
  function drawRow(tableId, key, fill) {
    const body = document.querySelector(`#${tableId} tbody`);
    const row = document.createElement("tr");
    row.dataset.key = key;
    fill(row);
    body.insertBefore(row, body.firstChild);
  }
  const sideClass = (side) => (side === "BUY" ? "buy" : "sell");
  const pnlClass = (v) => (Number(v) > 0 ? "pos" : Number(v) < 0 ? "neg" : "");
  // event: the socket.io event whose renderer draws a row (live rows); draw: rows drawn here; refreshOn: the
  // events after which page 1 of a table without live rows is read again; bare: no "no rows match" row
  // while live (page 1, no filter): the table stays empty until its first row arrives
  const TABLES = {
    signals: { path: "/api/tables/signals", event: "signal" },
    trades: { path: "/api/tables/trades", event: "trade" },
    orders: { path: "/api/tables/orders", event: "order", bare: true },
    decisions: { path: "/api/tables/decisions", event: "decision", bare: true },
    positions: { path: "/api/tables/positions", event: "position", bare: true },
    fills: {
      path: "/api/tables/fills", refreshOn: ["order", "trade"],
      draw: (f) => drawRow("fills", f.trade_id, (r) => cells(r, [[f.symbol], [f.side, sideClass(f.side)], [f.quantity],
        [fmt(f.price)], [fmt(f.fee, 4)], [f.client_id, "mono"], [time(f.time), "mono"]])),
    },
    funding: {
      path: "/api/tables/funding", refreshOn: ["position", "trade"],
      draw: (p) => drawRow("funding", `${p.symbol}:${p.time}`, (r) => cells(r, [[p.symbol], [p.side],
        [fmt(p.amount, 4), pnlClass(p.amount)], [fmt(Number(p.rate) * 100, 4) + " %"], [time(p.time), "mono"]])),
    },
  };
  const state = {};
  Object.keys(TABLES).forEach((name) => { state[name] = { page: 1, pages: 1, total: null, drawing: false, timer: null }; });
  let api = null;

  function filters(name) {
    const chosen = {};
    $(`${name}-tools`).querySelectorAll("select[data-filter]").forEach((s) => { if (s.value) chosen[s.dataset.filter] = s.value; });
    return chosen;
  }

  const browsing = (name) => state[name].page > 1 || Object.keys(filters(name)).length > 0;

  function showPage(name, text, kind) {
    const tools = $(`${name}-tools`);
    const s = state[name];
    const info = tools.querySelector(".page-info");
    info.textContent = text;
    info.dataset.kind = kind;
    tools.dataset.page = s.page;
    tools.dataset.total = s.total === null ? "" : s.total;
    tools.querySelector('[data-page="prev"]').disabled = s.page <= 1;
    tools.querySelector('[data-page="next"]').disabled = s.page >= s.pages;
  }

  async function load(name) {
    const s = state[name];
    const perPage = $(`${name}-tools`).querySelector("select[data-per-page]").value;
    const query = new URLSearchParams({ page: s.page, per_page: perPage, ...filters(name) });
    try {
      const data = await api(`${TABLES[name].path}?${query}`);
      Object.assign(s, { pages: data.pages, total: data.total });
      document.querySelector(`#${name} tbody`).replaceChildren();
      s.drawing = true;
      const draw = TABLES[name].draw || ((row) => window.bluefinaiRender[TABLES[name].event](row));
      try { [...data.rows].reverse().forEach(draw); } finally { s.drawing = false; }
      document.querySelectorAll(`#${name} tbody tr.flash`).forEach((r) => r.classList.remove("flash"));  // not new
      if (!data.rows.length && !(TABLES[name].bare && !browsing(name))) {
        const row = document.createElement("tr");
        row.className = "empty";
        const td = document.createElement("td");
        td.colSpan = document.querySelectorAll(`#${name} thead th`).length;
        td.textContent = "no rows match";
        row.appendChild(td);
        document.querySelector(`#${name} tbody`).appendChild(row);
      }
      const live = browsing(name) ? "" : " · live";
      const sum = name === "funding" ? ` · ${fmt(data.amount, 4)} USD` : "";
      showPage(name, `page ${data.page} of ${data.pages} · ${data.total} rows${sum}${live}`, "ok");
      if (TABLES[name].event === "decision" && window.bluefinaiCountVetoes) window.bluefinaiCountVetoes();
    } catch (err) {
      showPage(name, `Table unavailable: ${err.message}`, "error");
    }
  }

  // asked by the live renderers: may a row pushed by socket.io go into this table now?
  function accepts(name) {
    const s = state[name];
    if (s.drawing) return true;
    const live = !browsing(name);
    if (s.page === 1) { clearTimeout(s.timer); s.timer = setTimeout(() => load(name), live ? LIVE_RECOUNT_MS : RELOAD_DELAY_MS); }
    if (live) document.querySelectorAll(`#${name} tbody tr.empty`).forEach((r) => r.remove());
    return live;
  }

  // fills and funding: page 1 read again (debounced) after the events that may add rows, unless browsing
  function refreshAfter(eventName) {
    Object.entries(TABLES).forEach(([name, table]) => {
      if (!(table.refreshOn || []).includes(eventName) || browsing(name)) return;
      const s = state[name];
      clearTimeout(s.timer);
      s.timer = setTimeout(() => load(name), LIVE_RECOUNT_MS);
    });
  }

  let wired = false;
  function start(options) {
    api = options.api;
    if (!wired) {
      wired = true;
      if (options.socket) {
        new Set(Object.values(TABLES).flatMap((t) => t.refreshOn || [])).forEach((e) => options.socket.on(e, () => refreshAfter(e)));
      }
      Object.keys(TABLES).forEach((name) => {
        const tools = $(`${name}-tools`);
        tools.querySelectorAll("select[data-filter], select[data-per-page]").forEach((s) => s.addEventListener("change", () => { state[name].page = 1; load(name); }));
        tools.querySelector('[data-page="prev"]').addEventListener("click", () => { state[name].page = Math.max(1, state[name].page - 1); load(name); });
        tools.querySelector('[data-page="next"]').addEventListener("click", () => { state[name].page += 1; load(name); });
      });
    }
    Object.keys(TABLES).forEach(load);
  }

  const loadAll = () => Object.keys(TABLES).forEach(load);
  window.bluefinaiTables = { start, accepts, load, loadAll };
})();
