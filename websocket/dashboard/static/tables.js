// BluefinAI Trader dashboard: the signals and closed-trades tables a page at a time, filtered, from the agent
// API (/api/tables/signals, /api/tables/trades). On page 1 without filters the tables stay live (socket.io
// rows go on top); while a trader browses (a filter or a later page) live rows do not mix in: page 1 of the
// filtered view reloads instead.
(function () {
  "use strict";
  const RELOAD_DELAY_MS = 300;
  const LIVE_RECOUNT_MS = 2000;  // live rows go on top at once; the page (and its count) is read again after
  const TABLES = {
    signals: { path: "/api/tables/signals", event: "signal" },
    trades: { path: "/api/tables/trades", event: "trade" },
  };
  const $ = (id) => document.getElementById(id);
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
      try { [...data.rows].reverse().forEach((row) => window.bluefinaiRender[TABLES[name].event](row)); } finally { s.drawing = false; }
      document.querySelectorAll(`#${name} tbody tr.flash`).forEach((r) => r.classList.remove("flash"));  // not new
      if (!data.rows.length) {
        const row = document.createElement("tr");
        row.className = "empty";
        const td = document.createElement("td");
        td.colSpan = document.querySelectorAll(`#${name} thead th`).length;
        td.textContent = "no rows match";
        row.appendChild(td);
        document.querySelector(`#${name} tbody`).appendChild(row);
      }
      const live = browsing(name) ? "" : " · live";
      showPage(name, `page ${data.page} of ${data.pages} · ${data.total} rows${live}`, "ok");
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

  let wired = false;
  function start(options) {
    api = options.api;
    if (!wired) {
      wired = true;
      Object.keys(TABLES).forEach((name) => {
        const tools = $(`${name}-tools`);
        tools.querySelectorAll("select[data-filter], select[data-per-page]").forEach((s) => s.addEventListener("change", () => { state[name].page = 1; load(name); }));
        tools.querySelector('[data-page="prev"]').addEventListener("click", () => { state[name].page = Math.max(1, state[name].page - 1); load(name); });
        tools.querySelector('[data-page="next"]').addEventListener("click", () => { state[name].page += 1; load(name); });
      });
    }
    Object.keys(TABLES).forEach(load);
  }

  window.bluefinaiTables = { start, accepts, load };
})();
