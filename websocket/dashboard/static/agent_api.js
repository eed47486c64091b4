// The dashboard's calls to the agent API, shared by the panels: the token the page keeps, a GET that throws
// with the API's field messages on an error, and a POST that keeps a refusal's answer whole so its message
// and rule can be shown.
(function () {
  "use strict";
  const TOKEN_KEY = "bluefinai.token";

  const token = () => localStorage.getItem(TOKEN_KEY);

  async function get(path, asText) {
    const key = token();
    if (!key) throw new Error("no API token");
    const response = await fetch(path, { cache: "no-store", headers: { Authorization: `Bearer ${key}` } });
    if (!response.ok) {
      let detail = "";
      try { const body = await response.json(); detail = body.details ? `: ${body.details.map((d) => d.message).join("; ")}` : ""; } catch (_) { detail = ""; }
      throw new Error(`the agent API answered ${response.status}${detail}`);
    }
    return asText ? response.text() : response.json();
  }

  // POST to the agent: {ok, status, data}; a refusal's details (message and rule) are kept for the message.
  async function post(path, body) {
    const key = token();
    if (!key) throw new Error("no API token: enter it in the form first");
    let response;
    try {
      response = await fetch(path, {
        method: "POST", cache: "no-store",
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        body: JSON.stringify(body || {}),
      });
    } catch (err) {
      throw new Error(`could not reach the agent API (${(err && err.message) || err})`);
    }
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    return { ok: response.ok, status: response.status, data };
  }

  // A refused answer as one line: the error, then each detail's message with its rule (or field).
  function refusal(answer) {
    const data = answer.data || {};
    const details = Array.isArray(data.details) ? data.details : [];
    const parts = details.map((d) => (d.rule ? `${d.message} (rule: ${d.rule})` : `${d.field}: ${d.message}`));
    return `${data.error || `the agent API answered ${answer.status}`}: ${parts.join("; ") || "no detail"}`;
  }

  window.AgentAPI = { token, get, post, refusal };
})();
