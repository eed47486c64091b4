// The algos panel: start a TWAP or an iceberg (confirmed first), watch each algo's progress (filled of the
// total, slices, state) and cancel one, through the agent API (POST /api/algos, GET /api/algos,
// POST /api/algos/<id>/cancel). A refusal (a risk rule, a bad value) is shown with its message and rule.
// The list is read again every 2 s while an algo runs and after every order event of a slice.
(function () {
  "use strict";
  const RUNNING_EVERY_MS = 2000;
  const IDLE_EVERY_MS = 15000;
  const ORDER_DELAY_MS = 300;
  const ALGO_PREFIX = "algo-";
  const $ = (id) => document.getElementById(id);
  const num = (v) => Number(v).toLocaleString(undefined, { maximumFractionDigits: 8 });
  const time = (iso) => (iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 19) : "");
  let api = null;
  let timer = null;
  let busy = false;

  function show(kind, text) {
    const el = $("algo-result");
    el.dataset.kind = kind;
    el.textContent = text;
    el.hidden = !text;
  }

  const { post, refusal } = window.AgentAPI;

  function cell(row, text, className, field) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    if (field) td.dataset.field = field;
    row.appendChild(td);
    return td;
  }

  function draw(algos) {
    const body = document.querySelector("#algos tbody");
    const rows = algos.map((a) => {
      const r = document.createElement("tr");
      r.dataset.algoId = a.id;
      r.dataset.status = a.status;
      r.dataset.filled = a.filled;
      cell(r, `${a.kind} ${a.id.slice(ALGO_PREFIX.length, ALGO_PREFIX.length + 6)}`, "mono").title = a.id;
      cell(r, a.symbol);
      cell(r, a.side, a.side === "BUY" ? "buy" : "sell");
      const filled = cell(r, "", "progress", "filled");
      const bar = document.createElement("progress");
      bar.max = 1;
      bar.value = Math.min(1, Number(a.progress) || 0);
      filled.append(bar, ` ${num(a.filled)} / ${num(a.quantity)} (${Math.round(100 * (Number(a.progress) || 0))}%)`);
      const pieces = (a.orders || []).length;
      const slices = a.kind === "twap" ? `${a.slices_sent} of ${a.slices}` : `${pieces} piece${pieces === 1 ? "" : "s"} of ${num(a.visible_quantity)}`;
      cell(r, slices, "num", "slices");
      cell(r, a.status, `algo-${a.status}`, "status");
      cell(r, a.reason || "", "wrap", "reason");
      cell(r, time(a.created_at), "mono");
      const actions = cell(r, "", "actions");
      if (a.status === "RUNNING") {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "danger";
        b.dataset.testid = "cancel-algo";
        b.textContent = "cancel";
        b.addEventListener("click", () => cancel(b, a));
        actions.appendChild(b);
      }
      return r;
    });
    if (!rows.length) {
      const r = document.createElement("tr");
      r.className = "empty";
      cell(r, "no algos yet").colSpan = 9;
      rows.push(r);
    }
    body.replaceChildren(...rows);
  }

  async function refresh() {
    clearTimeout(timer);
    if (busy || !api) { timer = setTimeout(refresh, RUNNING_EVERY_MS); return; }
    busy = true;
    let running = 0;
    const status = $("algos-status");
    try {
      const data = await api("/api/algos?limit=20");
      running = data.running;
      draw(data.algos);
      status.dataset.kind = "ok";
      status.textContent = `${running} running · updated ${new Date().toISOString().slice(11, 19)} UTC`;
    } catch (err) {
      status.dataset.kind = "error";
      status.textContent = `Algos unavailable: ${err.message}`;
    } finally {
      busy = false;
      timer = setTimeout(refresh, running ? RUNNING_EVERY_MS : IDLE_EVERY_MS);
    }
  }

  function soon() { clearTimeout(timer); timer = setTimeout(refresh, ORDER_DELAY_MS); }

  function readForm(form) {
    const value = (name) => form.elements[name].value.trim();
    const number = (name) => (value(name) === "" ? null : Number(value(name)));
    const body = { kind: value("kind"), symbol: value("symbol"), side: value("side"), quantity: number("quantity") };
    const problems = [];
    if (!(body.quantity > 0)) problems.push("quantity must be a positive number");
    if (body.kind === "twap") {
      body.slices = number("slices");
      body.duration_s = number("duration_s") ?? 0;
      if (!Number.isInteger(body.slices) || body.slices < 1 || body.slices > 1000) problems.push("slices must be a whole number from 1 to 1000");
      if (!(body.duration_s >= 0)) problems.push("duration must be 0 or more seconds");
    } else {
      body.visible_quantity = number("visible_quantity");
      body.limit_price = number("limit_price");
      if (!(body.visible_quantity > 0) || body.visible_quantity > body.quantity) problems.push("visible size must be positive and at most the quantity");
      if (!(body.limit_price > 0)) problems.push("an iceberg needs a positive limit price");
    }
    return { body, problems };
  }

  function question(b) {
    return b.kind === "twap"
      ? `Start a TWAP: ${b.side} ${num(b.quantity)} ${b.symbol} in ${b.slices} slices over ${num(b.duration_s)} s?\n\nEach slice is a limit order at the touch; what a slice has not filled when the next is due goes at market. Every slice passes the risk rules.`
      : `Start an iceberg: ${b.side} ${num(b.quantity)} ${b.symbol}, ${num(b.visible_quantity)} visible at a time, limit ${num(b.limit_price)}?\n\nEvery slice passes the risk rules.`;
  }

  async function start(event) {
    event.preventDefault();
    const form = event.target;
    const { body, problems } = readForm(form);
    if (problems.length) { show("error", `Not sent: ${problems.join("; ")}`); return; }
    if (!window.confirm(question(body))) { show("info", "Algo: not sent."); return; }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    show("info", "Algo: sending…");
    try {
      const answer = await post("/api/algos", body);
      if (answer.ok && answer.data) {
        show("ok", `Started ${answer.data.kind} ${answer.data.id}: ${answer.data.status}, ${answer.data.slices_sent} slice(s) sent`);
      } else {
        show("error", `Algo refused — ${refusal(answer)}`);
      }
    } catch (err) {
      show("error", `Algo failed: ${err.message}`);
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  async function cancel(button, algo) {
    if (!window.confirm(`Cancel the ${algo.kind} ${algo.id} (${algo.side} ${num(algo.quantity)} ${algo.symbol}, ${num(algo.filled)} filled)?\n\nNo slice follows and its open slice is cancelled.`)) {
      show("info", "Cancel algo: not sent.");
      return;
    }
    button.disabled = true;
    try {
      const answer = await post(`/api/algos/${encodeURIComponent(algo.id)}/cancel`, {});
      if (answer.ok && answer.data) show("ok", `Cancel ${algo.id}: ${answer.data.status}, ${num(answer.data.filled)} of ${num(answer.data.quantity)} filled`);
      else show("error", `Cancel ${algo.id} refused — ${refusal(answer)}`);
    } catch (err) {
      show("error", `Cancel ${algo.id} failed: ${err.message}`);
    } finally {
      refresh();
    }
  }

  function showKind() {
    const kind = $("algo-form").elements.kind.value;
    $("algo-form").querySelectorAll("label[data-for]").forEach((l) => { l.hidden = l.dataset.for !== kind; });
  }

  let wired = false;
  const sockets = new WeakSet();
  function startPanel(options) {
    api = options.api;
    if (!sockets.has(options.socket)) {
      sockets.add(options.socket);
      options.socket.on("order", (d) => { if (d && String(d.parent_client_id || "").startsWith(ALGO_PREFIX)) soon(); });
    }
    if (!wired) {
      wired = true;
      $("algo-form").addEventListener("submit", start);
      $("algo-form").elements.kind.addEventListener("change", showKind);
      showKind();
    }
    refresh();
  }

  window.bluefinaiPanels = window.bluefinaiPanels || [];
  window.bluefinaiPanels.push({ start: startPanel });
})();
