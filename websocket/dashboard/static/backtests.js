// The Backtests view: the past runs in BACKTEST_DIR (GET /api/backtests, newest first, headline figures), one
// run's report (GET /api/backtests/<run>/report.html shown in a frame), two runs compared side by side
// (GET /api/backtests/compare) and an optimisation (best params, objective, folds, the overfitting warning,
// its best trial's report). The dashboard's CSP allows no inline script or style, so a report's inline
// chart library, script and stylesheet are swapped for the same files served by the dashboard
// (/static/vendor/lightweight-charts.js, /static/backtest/report.js, /static/backtest/report.css); its data
// stays in the page. Values go in with textContent, never as HTML.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const pct = (v) => (v === null || v === undefined ? "n/a" : `${(Number(v) * 100).toFixed(2)}%`);
  const num = (v) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(2));
  let runs = [];

  const { get } = window.AgentAPI;

  function status(text, kind) {
    const el = $("backtests-status");
    el.textContent = text;
    el.dataset.kind = kind || "";
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  const signed = (v) => (v === null || v === undefined || Number(v) === 0 ? "" : Number(v) > 0 ? "pos" : "neg");

  function table(header, rows) {
    const t = document.createElement("table");
    const head = document.createElement("tr");
    header.forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
    t.createTHead().appendChild(head);
    const body = t.createTBody();
    rows.forEach((r) => { const tr = document.createElement("tr"); r.forEach((c) => tr.appendChild(cell(c))); body.appendChild(tr); });
    return t;
  }

  function heading(text) { const h = document.createElement("h3"); h.textContent = text; return h; }

  function row(run) {
    const tr = document.createElement("tr");
    tr.dataset.run = run.name;
    tr.dataset.kind = run.kind;
    const pick = document.createElement("input");
    pick.type = "checkbox";
    pick.dataset.testid = "compare-pick";
    pick.setAttribute("data-testid", "compare-pick");
    pick.setAttribute("aria-label", `compare ${run.name}`);
    pick.addEventListener("change", picked);
    const first = document.createElement("td");
    first.appendChild(pick);
    tr.appendChild(first);
    tr.appendChild(cell(run.name));
    if (run.kind === "optimize") {
      tr.appendChild(cell("optimisation"));
      tr.appendChild(cell(run.created.replace("T", " ").slice(0, 19)));
      tr.appendChild(cell(`${run.n_trials} trials`));
      tr.appendChild(cell(`best ${run.objective} ${num(run.best_value)}`));
      tr.appendChild(cell(""));
      tr.appendChild(cell(""));
      tr.appendChild(cell(""));
      tr.appendChild(cell(run.overfitting_warning ? "⚠ overfitting" : ""));
    } else {
      tr.appendChild(cell("backtest"));
      tr.appendChild(cell(run.created.replace("T", " ").slice(0, 19)));
      tr.appendChild(cell(String(run.trades)));
      tr.appendChild(cell(pct(run.total_return), signed(run.total_return)));
      tr.appendChild(cell(pct(run.max_drawdown)));
      tr.appendChild(cell(num(run.sharpe)));
      tr.appendChild(cell(pct(run.win_rate)));
      tr.appendChild(cell(Object.entries(run.market_change || {}).map(([s, c]) => `${s} ${pct(c)}`).join(", ")));
    }
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = "open";
    open.setAttribute("data-testid", "open-backtest");
    open.addEventListener("click", () => (run.kind === "optimize" ? openOptimisation(run.name) : openReport(run.name, run.name)));
    const last = document.createElement("td");
    last.appendChild(open);
    tr.appendChild(last);
    return tr;
  }

  function picked() {
    const ticked = document.querySelectorAll('#backtests-list input[type="checkbox"]:checked');
    $("backtests-compare").disabled = ticked.length !== 2;
  }

  async function list() {
    try {
      const answer = await get("/api/backtests");
      runs = answer.runs;
      const broken = answer.unreadable || [];
      if (broken.length) status(`could not read ${broken.map((u) => `${u.name} (${u.problem})`).join("; ")}`, "error");
      const body = document.querySelector("#backtests-list tbody");
      if (!runs.length) {
        const empty = document.createElement("tr");
        empty.className = "empty";
        const td = cell("no backtests yet: run `bluefinai backtest --data FILE`");
        td.colSpan = 11;
        empty.appendChild(td);
        body.replaceChildren(empty);
      } else {
        body.replaceChildren(...runs.map(row));
      }
      $("backtests-panel").dataset.state = "loaded";
      $("backtests-panel").dataset.runs = String(runs.length);
      picked();
    } catch (err) {
      $("backtests-panel").dataset.state = "error";
      status(`could not list the backtests: ${err.message}`, "error");
    }
  }

  // a report's page made to load under the dashboard's CSP: its scripts and styles from the dashboard
  function forDashboard(html) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    doc.querySelectorAll("script:not([type]), style").forEach((el) => el.remove());
    const css = doc.createElement("link");
    css.rel = "stylesheet";
    css.href = new URL("/static/backtest/report.css", location.href).href;
    doc.head.appendChild(css);
    ["/static/vendor/lightweight-charts.js", "/static/backtest/report.js"].forEach((src) => {
      const s = doc.createElement("script");
      s.src = new URL(src, location.href).href;
      s.async = false;
      doc.body.appendChild(s);
    });
    return `<!DOCTYPE html>\n${doc.documentElement.outerHTML}`;
  }

  async function openReport(path, title) {
    const view = $("backtest-view");
    try {
      const html = await get(`/api/backtests/${encodeURIComponent(path)}/report.html`, true);
      $("backtest-view-title").textContent = title;
      $("backtest-frame").srcdoc = forDashboard(html);
      view.hidden = false;
      view.dataset.run = path;
      status(`showing ${title}`, "ok");
      view.scrollIntoView({ block: "start" });
    } catch (err) {
      status(`could not open ${title}: ${err.message}`, "error");
    }
  }

  async function openOptimisation(name) {
    const box = $("backtest-optimisation");
    try {
      const o = await get(`/api/backtests/${encodeURIComponent(name)}`);
      const parts = [heading(`Optimisation ${o.name}: study ${o.study}`)];
      parts.push(table(["objective", "direction", "trials", "best trial", "best value"],
        [[o.objective, o.direction, String(o.n_trials), `#${o.best.number}`, num(o.best.value)]]));
      if (o.overfitting_warning) {
        const warn = document.createElement("p");
        warn.className = "overfitting";
        warn.setAttribute("data-testid", "overfitting-warning");
        warn.textContent = `⚠ ${o.overfitting_warning}`;
        parts.push(warn);
      }
      parts.push(heading("Best parameters"));
      const params = table(["parameter", "value"], Object.entries(o.best.params || {}).map(([k, v]) => [k, String(v)]));
      params.setAttribute("data-testid", "optimisation-params");
      parts.push(params);
      const command = document.createElement("code");
      command.textContent = o.best.command || "";
      parts.push(command);
      parts.push(heading("Walk-forward folds"));
      const range = (r) => (Array.isArray(r) ? r.join(" → ") : String(r));
      const folds = table(["fold", "train", "test", `in-sample ${o.objective}`, `out-of-sample ${o.objective}`],
        (o.folds || []).map((f) => [String(f.fold), range(f.train), range(f.test), num(f.in_sample), num(f.out_of_sample)]));
      folds.setAttribute("data-testid", "optimisation-folds");
      parts.push(folds);
      if (o.best_report) {
        const open = document.createElement("button");
        open.type = "button";
        open.textContent = "Open the best trial's report";
        open.setAttribute("data-testid", "open-best-report");
        open.addEventListener("click", () => openReport(o.name, `${o.name}: best trial #${o.best.number}`));
        parts.push(open);
      }
      box.replaceChildren(...parts);
      box.hidden = false;
      box.dataset.run = name;
      status(`showing the optimisation ${name}`, "ok");
    } catch (err) {
      status(`could not open ${name}: ${err.message}`, "error");
    }
  }

  async function compare() {
    const names = [...document.querySelectorAll('#backtests-list input[type="checkbox"]:checked')].map((c) => c.closest("tr").dataset.run);
    if (names.length !== 2) return;
    const box = $("backtest-compare");
    try {
      const c = await get(`/api/backtests/compare?first=${encodeURIComponent(names[0])}&second=${encodeURIComponent(names[1])}`);
      const t = table(["", c.first, c.second], c.rows);
      t.setAttribute("data-testid", "compare-table");
      box.replaceChildren(heading(`${c.first} against ${c.second}`), t);
      box.hidden = false;
      status(`comparing ${c.first} and ${c.second}`, "ok");
    } catch (err) {
      status(`could not compare: ${err.message}`, "error");
    }
  }

  function start() {
    if (!window.AgentAPI.token()) { setTimeout(start, 1000); return; }
    $("backtests-refresh").addEventListener("click", list);
    $("backtests-compare").addEventListener("click", compare);
    list();
  }
  window.addEventListener("load", start);
})();
