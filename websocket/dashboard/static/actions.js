// The dashboard's position and order controls: close, reduce, move stop, cancel. Each asks the trader to
// confirm, goes to the agent API (same origin), and shows what was done or the rule that refused it.
// Values are inserted with textContent, never as HTML.
(function () {
  "use strict";
  const WORKING = ["PENDING_SUBMIT", "OPEN", "PARTIALLY_FILLED"];
  const $ = (id) => document.getElementById(id);
  const num = (v) => Number(v).toLocaleString(undefined, { maximumFractionDigits: 8 });

  function show(kind, text) {
    const el = $("action-result");
    if (!el) return;
    el.dataset.kind = kind;
    el.textContent = text;
    el.hidden = !text;
  }

  function requestId() {
    return window.crypto && window.crypto.randomUUID ? window.crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  }

  const { post, refusal } = window.AgentAPI;

  async function run(button, label, path, body, done) {
    button.disabled = true;
    show("info", `${label}: sending…`);
    try {
      const answer = await post(path, body);
      if (answer.ok && answer.data) {
        show("ok", `${label}: ${done(answer.data)}`);
      } else {
        show("error", `${label} refused — ${refusal(answer)}`);
      }
    } catch (err) {
      show("error", `${label} failed: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  const stops = (r) => (r.stops_working && r.stops_working.length ? `stop ${r.stops_working.map(num).join(", ")}` : "no stop working");

  function closePosition(button, symbol, fraction) {
    const whole = fraction >= 1;
    const label = whole ? `Close ${symbol}` : `Reduce ${symbol} by ${fraction * 100}%`;
    const question = whole
      ? `Close the whole ${symbol} position at market (reduce-only)?`
      : `Reduce the ${symbol} position by ${fraction * 100}% at market (reduce-only, rounded down to the market's step)?`;
    if (!window.confirm(question)) { show("info", `${label}: not sent.`); return; }
    run(button, label, `/api/positions/${encodeURIComponent(symbol)}/close`,
      { fraction, reason: "dashboard", request_id: requestId() },
      (r) => (Number(r.position) === 0
        ? `closed ${num(r.quantity)} (order ${r.status}); position flat`
        : `closed ${num(r.quantity)} (order ${r.status}); ${num(Math.abs(r.position))} left, ${stops(r)}`));
  }

  function reducePosition(button, symbol) {
    const answer = window.prompt(`Reduce ${symbol} by what percentage (1–100)?`, "50");
    if (answer === null) { show("info", `Reduce ${symbol}: not sent.`); return; }
    const percent = Number(answer);
    if (!(percent > 0 && percent <= 100)) { show("error", `Reduce ${symbol}: "${answer}" is not a percentage in (0, 100]`); return; }
    closePosition(button, symbol, percent / 100);
  }

  function moveStop(button, symbol, mark) {
    const answer = window.prompt(`Move the ${symbol} stop to which price? (mark ${num(mark)}; a stop only moves towards the price)`, "");
    if (answer === null || answer.trim() === "") { show("info", `Move stop ${symbol}: not sent.`); return; }
    const price = Number(answer.replace(/,/g, ""));
    if (!(price > 0)) { show("error", `Move stop ${symbol}: "${answer}" is not a price`); return; }
    if (!window.confirm(`Move the ${symbol} stop to ${num(price)}?`)) { show("info", `Move stop ${symbol}: not sent.`); return; }
    run(button, `Move stop ${symbol}`, `/api/positions/${encodeURIComponent(symbol)}/stop`, { price, reason: "dashboard" },
      (r) => `stop moved to ${num(r.stop)}; ${stops(r)}`);
  }

  function cancelOrder(button, order) {
    const what = `${order.role ? String(order.role).replace(/_/g, " ") : "order"} ${order.side} ${order.quantity} ${order.symbol}`;
    if (!window.confirm(`Cancel the ${what} (${order.client_id})?`)) { show("info", "Cancel: not sent."); return; }
    run(button, `Cancel ${order.client_id}`, `/api/orders/${encodeURIComponent(order.client_id)}/cancel`, {},
      (r) => `order ${r.status || "cancel sent"}`);
  }

  function button(text, testid, onClick, className) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.dataset.testid = testid;
    b.className = className || "secondary";
    b.addEventListener("click", () => onClick(b));
    return b;
  }

  function actionCell(row) {
    const td = document.createElement("td");
    td.className = "actions";
    row.appendChild(td);
    return td;
  }

  window.bluefinaiActions = {
    positionCell(row, d) {
      const td = actionCell(row);
      td.appendChild(button("close", "close-position", (b) => closePosition(b, d.symbol, 1), "danger"));
      td.appendChild(button("reduce", "reduce-position", (b) => reducePosition(b, d.symbol)));
      td.appendChild(button("move stop", "move-stop", (b) => moveStop(b, d.symbol, d.mark_price)));
    },
    orderCell(row, d) {
      const td = actionCell(row);
      if (WORKING.includes(d.status)) td.appendChild(button("cancel", "cancel-order", (b) => cancelOrder(b, d)));
    },
  };
})();
