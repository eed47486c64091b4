// The performance breakdowns of /api/performance: by signal source (a strategy's signals are the source
// strategy:<name>), by analyst and by exit reason, and the vetoes by rule. Drawn each time dashboard.js reads
// /api/performance. Values are inserted with textContent, never as HTML.
(function () {
  "use strict";
  const missing = (v) => v === null || v === undefined || v === "" || Number.isNaN(Number(v));
  const fmt = (v, digits = 2) => (missing(v) ? "—"
    : Number(v).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits }));
  const pct = (v) => (missing(v) ? "—" : `${fmt(Number(v) * 100, 1)}%`);
  const pnlClass = (v) => (Number(v) > 0 ? "pos" : Number(v) < 0 ? "neg" : "");
  const expectancy = (s) => (missing(s.expectancy_r) ? fmt(s.expectancy_usd) : `${fmt(s.expectancy_r)} R`);

  function fill(tableId, entries, columns, emptyText) {
    const body = document.querySelector(`#${tableId} tbody`);
    const rows = entries.map(([name, stats]) => {
      const r = document.createElement("tr");
      r.dataset.group = name;
      [[name], ...columns.map((column) => column(stats))].forEach(([text, className, field]) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (className) td.className = className;
        if (field) td.dataset.field = field;
        r.appendChild(td);
      });
      return r;
    });
    if (!rows.length) {
      const r = document.createElement("tr");
      r.className = "empty";
      const td = document.createElement("td");
      td.colSpan = document.querySelectorAll(`#${tableId} thead th`).length;
      td.textContent = emptyText;
      r.appendChild(td);
      rows.push(r);
    }
    body.replaceChildren(...rows);
    document.getElementById(tableId).dataset.groups = String(entries.length);
  }

  const trades = (s) => [String(s.trade_count ?? 0), "num", "trades"];
  const winRate = (s) => [pct(s.win_rate), "num", "win_rate"];
  const pnl = (s) => [fmt(s.pnl_gross ?? s.pnl), `num ${pnlClass(s.pnl_gross ?? s.pnl)}`, "pnl"];
  const cost = (s) => [missing(s.llm_cost_usd) ? "—" : `$${fmt(s.llm_cost_usd, 4)}`, "num", "ai_cost"];
  const net = (s) => [fmt(s.pnl_net_of_llm_cost ?? s.pnl), `num ${pnlClass(s.pnl_net_of_llm_cost ?? s.pnl)}`, "net"];
  const exp = (s) => [expectancy(s), `num ${pnlClass(s.expectancy_r ?? s.expectancy_usd)}`, "expectancy"];
  const avgWin = (s) => [fmt(s.avg_win), "num pos", "avg_win"];
  const avgLoss = (s) => [fmt(s.avg_loss), "num neg", "avg_loss"];

  function render(p) {
    fill("perf-by-source", Object.entries(p.by_signal_source || {}), [trades, winRate, pnl, cost, net, exp], "no closed trades yet");
    fill("perf-by-analyst", Object.entries(p.by_analyst || {}), [trades, winRate, pnl, cost, net, exp], "no closed trades yet");
    fill("perf-by-exit", Object.entries(p.by_exit_reason || {}), [trades, winRate, pnl, avgWin, avgLoss, exp], "no closed trades yet");
    const vetoes = p.vetoes || {};
    const total = Number(vetoes.total) || 0;
    fill("vetoes-by-rule", Object.entries(vetoes.by_rule || {}), [
      (n) => [String(n), "num", "vetoes"],
      (n) => [total ? `${fmt((100 * Number(n)) / total, 1)}%` : "—", "num", "share"],
    ], "no vetoes");
    document.getElementById("breakdowns-panel").dataset.state = "loaded";
  }

  window.bluefinaiBreakdowns = { render };
})();
