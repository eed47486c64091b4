// A decision's whole story: clicking a row of the decisions table opens a view built from
// GET /api/decisions/<id> (the alert, the analyst's view and market snapshot, each AI call's prompt and raw
// answer with its validation, the risk verdict with every rule's size and the binding one, the orders, the
// fills and the realised outcome and cost, and what each shadow book did with the same signal). Values are inserted with textContent, never as HTML.
(function () {
  "use strict";
  const TOKEN_KEY = "bluefinai.token";
  const $ = (id) => document.getElementById(id);
  const num = (v, digits = 8) => (v === null || v === undefined || v === "" ? "—"
    : Number(v).toLocaleString(undefined, { maximumFractionDigits: digits }));

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function section(box, key, title) {
    const s = el("section", undefined, "story-part");
    s.dataset.part = key;
    s.appendChild(el("h3", title));
    box.appendChild(s);
    return s;
  }

  function pairs(parent, entries) {
    const dl = el("dl", undefined, "story-pairs");
    entries.forEach(([k, v]) => { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v === null || v === undefined || v === "" ? "—" : v)); });
    parent.appendChild(dl);
    return dl;
  }

  function json(parent, value) {
    parent.appendChild(el("pre", JSON.stringify(value, null, 2), "story-json"));
  }

  function table(parent, headers, rows) {
    const t = el("table");
    const head = el("tr");
    headers.forEach((h) => head.appendChild(el("th", h)));
    t.appendChild(el("thead")).appendChild(head);
    const body = t.appendChild(el("tbody"));
    rows.forEach((cells) => { const r = el("tr"); cells.forEach((c) => r.appendChild(el("td", c))); body.appendChild(r); });
    if (!rows.length) { const r = el("tr", undefined, "empty"); const td = el("td", "none"); td.colSpan = headers.length; r.appendChild(td); body.appendChild(r); }
    parent.appendChild(t);
    return t;
  }

  function render(box, s) {
    const d = s.decision;
    box.replaceChildren();
    const head = el("div", undefined, "story-head");
    head.appendChild(el("h2", `Decision #${d.id} · signal #${d.signal_id}`));
    const close = el("button", "close", "secondary");
    close.type = "button";
    close.dataset.testid = "decision-detail-close";
    close.addEventListener("click", () => { box.hidden = true; });
    head.appendChild(close);
    box.appendChild(head);

    const signal = section(box, "signal", "Alert / signal");
    if (s.signal) {
      pairs(signal, [["symbol", s.signal.symbol], ["action", s.signal.action], ["source", s.signal.source],
        ["strategy", s.signal.strategy], ["price", num(s.signal.price)], ["received", s.signal.received_at]]);
    }
    if (s.alert) json(signal, s.alert);

    const analyst = section(box, "analyst", "Analyst and market snapshot");
    pairs(analyst, [["analyst", d.analyst], ["action", d.action], ["confidence", num(d.confidence, 2)],
      ["stop", num(d.stop_loss)], ["take-profit", num(d.take_profit)], ["rationale", d.rationale]]);
    if (d.factors && Object.keys(d.factors).length) json(analyst, d.factors);
    if (d.proposal && Object.keys(d.proposal).length) json(analyst, d.proposal);

    const ai = section(box, "ai", "AI calls");
    if (!(s.ai_calls || []).length) ai.appendChild(el("p", "no AI call: the rules decided", "note"));
    (s.ai_calls || []).forEach((c, i) => {
      pairs(ai, [["model", `${c.provider} ${c.model}`], ["prompt", `${c.prompt_version} (${String(c.prompt_hash).slice(0, 12)})`],
        ["validation", (c.validation_errors || []).length ? c.validation_errors.join("; ") : c.error || "valid"],
        ["tokens", `${c.input_tokens} in / ${c.output_tokens} out`], ["cost", `$${num(c.cost_usd, 4)}`], ["latency", `${c.latency_ms} ms`]]);
      if ((s.prompts || [])[i]) { ai.appendChild(el("h4", "prompt")); ai.appendChild(el("pre", s.prompts[i], "story-json")); }
      ai.appendChild(el("h4", "raw answer"));
      ai.appendChild(el("pre", c.raw_output || "", "story-json"));
    });

    const risk = section(box, "risk", "Risk verdict");
    const r = d.risk || {};
    pairs(risk, [["verdict", d.risk_approved ? `approved ${num(d.quantity)}` : "not traded"], ["reason", d.risk_reason],
      ["binding rule", r.binding], ["stop used", num(r.stop)], ["reward/risk", num(r.reward_risk, 2)],
      ["expected funding", r.funding ? `$${num(r.funding_cost_usd, 4)} (${num(r.funding.bps, 2)} bps over ${r.funding.horizon_hours} h)` : "—"]]);
    const sizes = Object.entries(r.sizes || {});
    const t = table(risk, ["rule", "size"], sizes.map(([rule, size]) => [rule, num(size)]));
    t.dataset.testid = "risk-sizes";
    [...t.querySelectorAll("tbody tr")].forEach((row, i) => {
      if (sizes[i] && sizes[i][0] === r.binding) { row.classList.add("binding"); row.dataset.binding = "true"; }
    });
    if (r.checks) json(risk, r.checks);

    const orders = section(box, "orders", "Orders");
    table(orders, ["role", "side", "type", "qty", "price", "status", "client id"], (s.orders || []).map((o) => [
      String(o.role || "").replace(/_/g, " "), o.side, o.type, num(o.quantity),
      num(o.price ?? o.trigger_price ?? o.limit_price), o.status, o.client_id]));
    const fills = section(box, "fills", "Fills");
    table(fills, ["side", "qty", "price", "fee", "time"], (s.fills || []).map((f) => [f.side, num(f.quantity), num(f.price), num(f.fee, 4), f.time]));

    const outcome = section(box, "outcome", "Outcome and cost");
    const o = s.outcome || {};
    pairs(outcome, [["trades closed", o.trades], ["realised PnL", o.realised_pnl === null ? "open or none" : num(o.realised_pnl, 2)],
      ["fees", num(o.fees, 4)], ["funding", num(o.funding, 4)],
      ["AI cost", `$${num((s.ai_calls || []).reduce((a, c) => a + (Number(c.cost_usd) || 0), 0), 4)}`]]);
    (s.trades || []).forEach((tr) => outcome.appendChild(el("p", `${tr.exit_reason}: ${num(tr.quantity)} from ${num(tr.entry_price, 2)} to ${num(tr.exit_price, 2)}, PnL ${num(tr.pnl, 2)}`, "note")));

    // the shadow books (agent.arena): each analyst's paper trade opened or closed by this signal
    const shadow = section(box, "shadow", "Shadow books");
    const st = table(shadow, ["analyst", "decision", "qty", "entry", "exit", "status", "PnL", "fees", "LLM cost"],
      (s.shadow || []).map((t) => [
        t.analyst, `${t.side === "BUY" ? "long" : "short"} ${t.role === "closed" ? `(closed here: ${t.exit_reason})` : "opened"}`,
        num(t.quantity), num(t.entry_price, 2), t.exit_price === null ? "open" : num(t.exit_price, 2), t.status,
        t.status === "CLOSED" ? num(t.pnl, 2) : "—", num(t.fees, 4), `$${num(t.llm_cost_usd, 4)}`]));
    st.dataset.testid = "shadow-outcomes";
    [...st.querySelectorAll("tbody tr:not(.empty)")].forEach((row, i) => { row.dataset.analyst = s.shadow[i].analyst; });
  }

  async function open(id) {
    const box = $("decision-detail");
    box.hidden = false;
    box.dataset.decisionId = id;
    box.dataset.state = "loading";
    box.replaceChildren(el("p", `loading decision #${id}…`, "note"));
    try {
      const response = await fetch(`/api/decisions/${encodeURIComponent(id)}`, {
        cache: "no-store", headers: { Authorization: `Bearer ${localStorage.getItem(TOKEN_KEY) || ""}` },
      });
      const data = await response.json();
      if (!response.ok) throw new Error(data && data.error ? data.error : `the agent API answered ${response.status}`);
      render(box, data);
      box.dataset.state = "loaded";
      box.scrollIntoView({ block: "start" });
    } catch (err) {
      box.dataset.state = "error";
      box.replaceChildren(el("p", `Decision #${id} could not be read: ${err.message}`, "note"));
    }
  }

  document.addEventListener("click", (event) => {
    const row = event.target.closest && event.target.closest("#decisions tbody tr[data-decision-id]");
    if (row) open(row.dataset.decisionId);
  });
})();
