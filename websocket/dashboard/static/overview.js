// The AI spend panel (today against AI_DAILY_BUDGET_USD), the arena (each analyst's shadow book on the same
// signals, the raw-signal baseline first) and the effective settings (secrets redacted, the risk preset
// resolved), read from the agent API. Values are inserted with textContent, never as HTML.
(function () {
  "use strict";
  const SPEND_EVERY_MS = 30000;
  const ARENA_EVERY_MS = 15000;
  const $ = (id) => document.getElementById(id);
  const usd = (v) => `$${Number(v).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 4 })}`;

  const { get } = window.AgentAPI;

  async function spend() {
    const box = $("ai-spend");
    try {
      const s = await get("/api/ai/spend");
      box.dataset.state = s.over_budget ? "over" : "ok";
      $("ai-spend-value").textContent = `${usd(s.spent_today_usd)} of ${usd(s.budget_usd)}`;
      $("ai-spend-detail").textContent = s.over_budget
        ? `over the daily budget: the rules decide until 00:00 UTC (analyst ${s.analyst})`
        : `${usd(s.remaining_usd)} left today (analyst ${s.analyst})`;
      const bar = $("ai-spend-bar");
      bar.max = Number(s.budget_usd) || 1;
      bar.value = Math.min(Number(s.spent_today_usd), bar.max);
    } catch (err) {
      box.dataset.state = "error";
      $("ai-spend-detail").textContent = `could not read the AI spend: ${err.message}`;
    }
  }

  const fixed = (v, digits, suffix = "") => (v === null || v === undefined ? "—" : `${Number(v).toFixed(digits)}${suffix}`);

  function arenaRow(row, baseline) {
    const r = document.createElement("tr");
    r.dataset.analyst = row.analyst;
    if (baseline) r.classList.add("baseline");
    const cells = [
      baseline ? `${row.analyst} (baseline: the raw signals)` : row.analyst, String(row.trades),
      usd(row.pnl), fixed(row.return_pct, 2, " %"), fixed(row.max_drawdown_pct, 2, " %"), fixed(row.sharpe, 2),
      row.win_rate === null || row.win_rate === undefined ? "—" : `${(row.win_rate * 100).toFixed(1)} %`,
      usd(row.llm_cost_usd), usd(row.pnl_net_of_llm_cost),
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 8) td.className = Number(row.pnl_net_of_llm_cost) >= 0 ? "pos" : "neg";
      r.appendChild(td);
    });
    return r;
  }

  async function arena() {
    const panel = $("arena-panel");
    try {
      const a = await get("/api/arena");
      document.querySelector("#arena tbody").replaceChildren(
        arenaRow(a.baseline, true), ...a.arena.map((row) => arenaRow(row, false)));
      $("arena-note").textContent =
        `LLM cost so far ${usd(a.llm_cost_usd)}; the real book's PnL net of it ${usd(a.pnl_net_of_llm_cost)}`;
      panel.dataset.state = "loaded";
    } catch (err) {
      panel.dataset.state = "error";
      $("arena-note").textContent = `could not read the arena: ${err.message}`;
    }
  }

  function rows(tableId, entries) {
    const body = document.querySelector(`#${tableId} tbody`);
    body.replaceChildren(...entries.map(([k, v]) => {
      const r = document.createElement("tr");
      r.dataset.setting = k;
      [k, v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v)].forEach((t) => {
        const td = document.createElement("td"); td.textContent = t; r.appendChild(td);
      });
      return r;
    }));
  }

  async function settings() {
    try {
      const s = await get("/api/settings/effective");
      rows("effective-settings", Object.entries(s.settings).sort(([a], [b]) => a.localeCompare(b)));
      rows("effective-risk", Object.entries(s.risk_policy));
      $("settings-panel").dataset.state = "loaded";
    } catch (err) {
      $("settings-panel").dataset.state = "error";
    }
  }

  function start() {
    if (!window.AgentAPI.token()) { setTimeout(start, 1000); return; }
    spend();
    arena();
    settings();
    setInterval(spend, SPEND_EVERY_MS);
    setInterval(arena, ARENA_EVERY_MS);
  }
  window.addEventListener("load", start);
})();
