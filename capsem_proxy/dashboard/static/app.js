// capsem-proxy dashboard: reads the admin API with the session cookie and renders plain tables.
// Every value from the audit trail is inserted as text (textContent), never as HTML: reasons,
// tool names and ids can carry caller-controlled strings.
"use strict";

const LIVE_POLL_MS = 1500;
const VIEW_REFRESH_MS = 5000;
const MAX_LIVE_ROWS = 300;
const BLOCKING_VERDICTS = "BLOCK,CONFIRM,CLARIFY,REPLAN";
const MAX_REMEMBERED_REASONS = 5000;
const MAX_REASON_LOOKUPS = 3; // requests to /admin/requests/{id} at once, for reasons not seen yet

const state = {
  requestSeq: null, // newest request row seen (live tail cursor)
  decisionSeq: null,
  view: "live",
  livePoll: null,
  charts: {},
  // A request row holds only its governing decision's category (`reason`); its text (`details`) is
  // on the decision row. Every decision row seen is remembered here, decision_id -> "reason: details",
  // so request tables show the whole reason; the few not seen are looked up once per request.
  reasons: new Map(),
  reasonLookups: { queue: [], running: 0, asked: new Set() },
};

// --- helpers -----------------------------------------------------------------------------

function el(tag, options, ...children) {
  const node = document.createElement(tag);
  const { text, className, href, title, onClick } = options || {};
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  if (href) node.setAttribute("href", href);
  if (title) node.title = title;
  if (onClick) node.addEventListener("click", onClick);
  for (const child of children) node.append(child);
  return node;
}

function clockTime(seconds) {
  if (typeof seconds !== "number") return "";
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

function fullTime(seconds) {
  if (typeof seconds !== "number") return "";
  return new Date(seconds * 1000).toISOString();
}

function short(id) {
  return id ? String(id).slice(0, 12) : "";
}

function ms(value) {
  return typeof value === "number" ? value.toFixed(1) : "";
}

function setStatus(message, isError) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.className = isError ? "error" : "";
}

async function api(path, options) {
  const response = await fetch(path, {
    credentials: "same-origin",
    headers: { accept: "application/json", ...((options && options.headers) || {}) },
    method: (options && options.method) || "GET",
  });
  if (response.status === 401) {
    // The session expired or the token changed: the page itself now answers with the login form.
    window.location.reload();
    throw new Error("not logged in");
  }
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = (payload && payload.detail) || "HTTP " + response.status;
    throw new Error(detail);
  }
  return payload;
}

function idLink(prefix, id, label) {
  if (!id) return el("span");
  return el("a", { href: "#" + prefix + "/" + encodeURIComponent(id), text: label || short(id), title: id });
}

function verdictCell(verdict, shadow) {
  const cell = el("td", { text: verdict || "", className: "verdict" });
  if (verdict) cell.classList.add("verdict-" + String(verdict).toLowerCase());
  if (shadow) {
    // A shadow policy's decision: what it would have done; nothing was enforced.
    cell.classList.add("verdict-shadow");
    cell.title = "shadow policy: would have done " + verdict + "; recorded, not enforced";
    cell.append(el("span", { text: "shadow", className: "badge-shadow" }));
  }
  return cell;
}

// --- reasons and statuses -----------------------------------------------------------------

function decisionReason(row) {
  return [row.reason, row.details].filter(Boolean).join(": ");
}

function rememberReasons(decisions) {
  for (const row of decisions) {
    if (!row.decision_id) continue;
    state.reasons.delete(row.decision_id);
    state.reasons.set(row.decision_id, decisionReason(row));
  }
  // Oldest first out: a Map iterates in insertion order.
  for (const key of state.reasons.keys()) {
    if (state.reasons.size <= MAX_REMEMBERED_REASONS) break;
    state.reasons.delete(key);
  }
}

// The reason a request row shows: its governing decision's category and text.
function requestReason(row) {
  return (row.decision_id && state.reasons.get(row.decision_id)) || row.reason || "";
}

function lookUpReason(requestId) {
  const lookups = state.reasonLookups;
  if (!requestId || lookups.asked.has(requestId)) return;
  if (lookups.asked.size >= MAX_REMEMBERED_REASONS) lookups.asked.clear(); // a long-open page stays small
  lookups.asked.add(requestId);
  lookups.queue.push(requestId);
  runReasonLookups();
}

function runReasonLookups() {
  const lookups = state.reasonLookups;
  while (lookups.running < MAX_REASON_LOOKUPS && lookups.queue.length) {
    const requestId = lookups.queue.shift();
    lookups.running += 1;
    api("/admin/requests/" + encodeURIComponent(requestId))
      .then((page) => {
        rememberReasons(page.decisions || []);
        const decisionId = page.request && page.request.decision_id;
        if (!decisionId || !state.reasons.has(decisionId)) return;
        for (const cell of document.querySelectorAll("td.reason[data-decision-id]")) {
          if (cell.dataset.decisionId === decisionId) cell.textContent = state.reasons.get(decisionId);
        }
      })
      .catch(() => {})
      .finally(() => {
        lookups.running -= 1;
        runReasonLookups();
      });
  }
}

function reasonCell(row) {
  const cell = el("td", { text: requestReason(row), className: "reason" });
  if (row.decision_id) {
    cell.dataset.decisionId = row.decision_id;
    if (!state.reasons.has(row.decision_id)) lookUpReason(row.request_id);
  }
  return cell;
}

// A stream a policy ended had already answered 200: that stays the status (it is what the client,
// its SDK and the provider saw), marked as blocked so it does not read as a success.
function statusText(row) {
  if (row.verdict === "BLOCK" && typeof row.status === "number" && row.status < 400) {
    return row.status + (row.stream ? " (stream blocked)" : " (blocked)");
  }
  return row.status === undefined || row.status === null ? "" : String(row.status);
}

function statusCell(row) {
  const text = statusText(row);
  const cell = el("td", { text, className: "status" });
  if (text.endsWith("blocked)")) {
    cell.classList.add("status-blocked");
    cell.title =
      "The provider's answer had started with HTTP " + row.status + "; a policy ended it with the provider's " +
      "own error event, so the blocked content never reached the client.";
  }
  return cell;
}

// --- rows --------------------------------------------------------------------------------

function requestRow(row) {
  const tr = el(
    "tr",
    { className: "request-row", title: "request " + row.request_id },
    el("td", { text: clockTime(row.started_at), title: fullTime(row.started_at) }),
    el("td", { text: short(row.tenant_id), title: row.tenant_id }),
    el("td", {}, idLink("session", row.session_id)),
    el("td", { text: row.agent_id || "", className: "wrap" }),
    el("td", { text: row.provider || "" }),
    el("td", { text: row.model || "", className: "wrap" }),
    statusCell(row),
    verdictCell(row.verdict),
    reasonCell(row),
    el("td", { text: ms(row.latency_ms), className: "number" }),
  );
  tr.dataset.requestId = row.request_id || "";
  tr.addEventListener("click", (event) => {
    if (event.target.closest("a")) return;
    window.location.hash = "#request/" + encodeURIComponent(row.request_id);
  });
  return tr;
}

function decisionRow(row) {
  const tr = el(
    "tr",
    { className: "decision-row" },
    el("td", { text: clockTime(row.recorded_at), title: fullTime(row.recorded_at) }),
    el("td", {}, idLink("request", row.request_id)),
    el("td", {}, idLink("session", row.session_id)),
    el("td", { text: row.policy || "" }),
    el("td", { text: row.hook || "" }),
    verdictCell(row.verdict, row.shadow),
    el("td", { text: decisionReason(row), className: "reason" }),
    el("td", { text: row.subject || "", className: "wrap" }),
    el("td", { text: ms(row.latency_ms), className: "number" }),
  );
  tr.dataset.decisionId = row.decision_id || "";
  return tr;
}

function fillTable(tableId, rows, makeRow, emptyText) {
  const body = document.querySelector("#" + tableId + " tbody");
  const columns = document.querySelectorAll("#" + tableId + " thead th").length;
  body.replaceChildren(...rows.map(makeRow));
  if (!rows.length) {
    const cell = el("td", { text: emptyText || "nothing yet", className: "empty" });
    cell.colSpan = columns;
    body.append(el("tr", {}, cell));
  }
}

// Newest first: rows of the live tail arrive oldest first, so each goes on top in turn.
function prependRows(tableId, rows, makeRow) {
  const body = document.querySelector("#" + tableId + " tbody");
  const empty = body.querySelector("td.empty");
  if (empty && rows.length) empty.parentElement.remove();
  for (const row of rows) body.prepend(makeRow(row));
  while (body.rows.length > MAX_LIVE_ROWS) body.lastElementChild.remove();
}

function maxSeq(rows, current) {
  return rows.reduce((best, row) => (typeof row.seq === "number" && row.seq > best ? row.seq : best), current);
}

// --- live view ---------------------------------------------------------------------------

// One poll at a time: the timer and a view change may both ask, and overlapping polls would
// show the same rows twice.
async function pollLive() {
  if (!state.livePoll) {
    state.livePoll = pollLiveOnce().finally(() => {
      state.livePoll = null;
    });
  }
  return state.livePoll;
}

async function pollLiveOnce() {
  // Decisions first: a request's decisions are recorded before its row, so its reason is known
  // by the time the row is drawn.
  if (state.decisionSeq === null) {
    const page = await api("/admin/decisions?limit=100");
    rememberReasons(page.decisions);
    fillTable("live-decisions", page.decisions, decisionRow, "no decisions recorded yet");
    state.decisionSeq = maxSeq(page.decisions, 0);
  } else {
    const page = await api("/admin/decisions?after_seq=" + state.decisionSeq + "&limit=500");
    rememberReasons(page.decisions);
    prependRows("live-decisions", page.decisions, decisionRow);
    state.decisionSeq = maxSeq(page.decisions, state.decisionSeq);
  }
  if (state.requestSeq === null) {
    const page = await api("/admin/requests?limit=100");
    fillTable("live-requests", page.requests, requestRow, "no requests recorded yet");
    state.requestSeq = maxSeq(page.requests, 0);
  } else {
    const page = await api("/admin/requests?after_seq=" + state.requestSeq + "&limit=500");
    prependRows("live-requests", page.requests, requestRow);
    state.requestSeq = maxSeq(page.requests, state.requestSeq);
  }
}

// --- other views -------------------------------------------------------------------------

async function showBlocked() {
  const [requests, decisions] = await Promise.all([
    api("/admin/requests?blocked=true&limit=200"),
    api("/admin/decisions?verdict=" + BLOCKING_VERDICTS + "&limit=200"),
  ]);
  rememberReasons(decisions.decisions);
  fillTable("blocked-requests", requests.requests, requestRow, "no blocked requests");
  fillTable("blocked-decisions", decisions.decisions, decisionRow, "no blocking decisions");
}

async function showSessions() {
  const page = await api("/admin/sessions?limit=200");
  fillTable(
    "sessions",
    page.sessions,
    (session) =>
      el(
        "tr",
        {},
        el("td", { text: clockTime(session.last_at), title: fullTime(session.last_at) }),
        el("td", {}, idLink("session", session.session_id, session.session_id)),
        el("td", { text: short(session.tenant_id), title: session.tenant_id }),
        el("td", { text: (session.agent_ids || []).join(", ") }),
        el("td", { text: session.requests, className: "number" }),
        el("td", { text: session.blocked, className: "number" }),
        el("td", { text: session.input_tokens ?? "", className: "number" }),
        el("td", { text: session.output_tokens ?? "", className: "number" }),
      ),
    "no sessions recorded yet",
  );
}

function timelineRow(item) {
  const isRequest = item.type === "request";
  const when = isRequest ? item.started_at : item.recorded_at;
  const what = isRequest
    ? [item.provider, item.model, statusText(item)].filter((part) => part !== undefined && part !== "").join(" ")
    : [item.policy, item.hook, item.subject].filter(Boolean).join(" ");
  const reason = isRequest ? requestReason(item) : decisionReason(item);
  return el(
    "tr",
    { className: "timeline-" + item.type },
    el("td", { text: clockTime(when), title: fullTime(when) }),
    el("td", { text: item.type }),
    el("td", {}, idLink("request", item.request_id)),
    el("td", { text: what, className: "wrap" }),
    verdictCell(item.verdict, !isRequest && item.shadow),
    el("td", { text: reason || "", className: "reason" }),
  );
}

async function showSession(sessionId) {
  document.getElementById("session-title").textContent = sessionId;
  const page = await api("/admin/sessions/" + encodeURIComponent(sessionId));
  rememberReasons(page.timeline.filter((item) => item.type === "decision"));
  fillTable("session-timeline", page.timeline, timelineRow, "no events");
}

async function showRequest(requestId) {
  document.getElementById("request-title").textContent = requestId;
  const page = await api("/admin/requests/" + encodeURIComponent(requestId));
  rememberReasons(page.decisions || []);
  const fields = document.getElementById("request-fields");
  fields.replaceChildren();
  const request = page.request || {};
  for (const [name, value] of Object.entries(request)) {
    if (value === null || value === "" || name === "hash") continue;
    let shown = name.endsWith("_at") ? fullTime(value) : typeof value === "object" ? JSON.stringify(value) : value;
    if (name === "status") shown = statusText(request);
    if (name === "reason") shown = requestReason(request);
    fields.append(el("dt", { text: name }), el("dd", { text: shown }));
  }
  const sessionId = request.session_id || (page.decisions.find((row) => row.session_id) || {}).session_id;
  const link = document.getElementById("request-session-link");
  link.hidden = !sessionId;
  if (sessionId) link.setAttribute("href", "#session/" + encodeURIComponent(sessionId));
  fillTable("request-decisions", page.decisions, decisionRow, "no decisions");
}

function drawChart(key, containerId, series, data) {
  const container = document.getElementById(containerId);
  const width = Math.max(container.clientWidth, 300);
  if (typeof uPlot === "undefined") {
    container.textContent = "chart library not loaded";
    return;
  }
  if (!state.charts[key]) {
    const options = {
      width,
      height: 220,
      series: [{}, ...series],
      axes: [{}, { size: 60 }],
      scales: { x: { time: true } },
    };
    state.charts[key] = new uPlot(options, data, container);
  } else {
    state.charts[key].setData(data);
    state.charts[key].setSize({ width, height: 220 });
  }
}

const OVERVIEW_WINDOW_S = 3600;
const OVERVIEW_BUCKET_S = 60;

async function showOverview() {
  const now = Math.floor(Date.now() / 1000);
  const since = now - OVERVIEW_WINDOW_S;
  const summary = await api("/admin/summary?since=" + since + "&bucket=" + OVERVIEW_BUCKET_S);
  document.getElementById("stat-requests").textContent = summary.requests;
  document.getElementById("stat-blocked").textContent = summary.blocked;
  document.getElementById("stat-verdicts").textContent =
    Object.entries(summary.by_verdict || {})
      .map(([verdict, count]) => verdict + " " + count)
      .join(" · ") || "-";
  // Every bucket of the window gets a point, so the time axis always spans the whole hour:
  // no requests means a count of 0 and no latency (a gap in the line).
  const byStart = new Map((summary.latency || []).map((bucket) => [bucket.t, bucket]));
  const times = [];
  for (let t = Math.floor(since / OVERVIEW_BUCKET_S) * OVERVIEW_BUCKET_S; t <= now; t += OVERVIEW_BUCKET_S) {
    times.push(t);
  }
  const pick = (name, empty) =>
    times.map((t) => {
      const bucket = byStart.get(t);
      return bucket && typeof bucket[name] === "number" ? bucket[name] : empty;
    });
  drawChart(
    "latency",
    "chart-latency",
    [
      { label: "p50", stroke: "#2b7bb9", width: 2 },
      { label: "p95", stroke: "#e08a00", width: 2 },
      { label: "p99", stroke: "#c0392b", width: 2 },
    ],
    [times, pick("p50", null), pick("p95", null), pick("p99", null)],
  );
  drawChart("count", "chart-count", [{ label: "requests", stroke: "#555", fill: "rgba(85,85,85,0.15)", points: { show: false } }], [
    times,
    pick("count", 0),
  ]);
  fillTable(
    "top-policies",
    summary.top_policies || [],
    (row) => el("tr", {}, el("td", { text: row.policy }), verdictCell(row.verdict), el("td", { text: row.count })),
    "no decisions",
  );
  fillTable(
    "top-tenants",
    summary.top_tenants || [],
    (row) =>
      el(
        "tr",
        {},
        el("td", { text: short(row.tenant_id), title: row.tenant_id }),
        el("td", { text: row.requests, className: "number" }),
        el("td", { text: row.blocked, className: "number" }),
      ),
    "no requests",
  );
}

async function decide(decisionId, action) {
  try {
    // The custom header is what a cross-site form cannot send: it marks the POST as the dashboard's.
    await api("/admin/approvals/" + encodeURIComponent(decisionId) + "/" + action, {
      method: "POST",
      headers: { "x-capsem-admin": "1" },
    });
    setStatus("decision " + short(decisionId) + " " + (action === "approve" ? "approved" : "denied"), false);
  } catch (error) {
    setStatus(error.message, true);
  }
  await showApprovals();
}

async function showApprovals() {
  const page = await api("/admin/approvals");
  const pending = page.approvals || [];
  document.getElementById("approvals-count").textContent = pending.length ? String(pending.length) : "";
  fillTable(
    "approvals",
    pending,
    (held) =>
      el(
        "tr",
        {},
        el("td", { text: clockTime(held.held_at), title: fullTime(held.held_at) }),
        el("td", { text: short(held.decision_id), title: held.decision_id }),
        el("td", { text: short(held.tenant_id), title: held.tenant_id }),
        el("td", { text: held.policy }),
        el("td", { text: held.reason, className: "reason" }),
        el("td", { text: held.details }),
        el(
          "td",
          { className: "actions" },
          el("button", { text: "Approve", className: "approve", onClick: () => decide(held.decision_id, "approve") }),
          el("button", { text: "Deny", className: "deny", onClick: () => decide(held.decision_id, "deny") }),
        ),
      ),
    "nothing is waiting for approval",
  );
}

// --- navigation --------------------------------------------------------------------------

const VIEWS = {
  live: () => pollLive(),
  blocked: showBlocked,
  sessions: showSessions,
  session: showSession,
  request: showRequest,
  overview: showOverview,
  approvals: showApprovals,
};

function currentRoute() {
  const [name, ...rest] = window.location.hash.replace(/^#/, "").split("/");
  const argument = rest.length ? decodeURIComponent(rest.join("/")) : null;
  return VIEWS[name] ? { name, argument } : { name: "live", argument: null };
}

async function render() {
  const { name, argument } = currentRoute();
  state.view = name;
  for (const section of document.querySelectorAll("section.view")) {
    section.hidden = section.id !== "view-" + name;
  }
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.nav === name);
  }
  try {
    await VIEWS[name](argument);
    setStatus("updated " + clockTime(Date.now() / 1000), false);
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function tick() {
  if (!document.hidden) {
    try {
      await pollLive();
      if (state.view === "live") setStatus("updated " + clockTime(Date.now() / 1000), false);
    } catch (error) {
      setStatus(error.message, true);
    }
  }
  window.setTimeout(tick, LIVE_POLL_MS);
}

async function refreshView() {
  const { name, argument } = currentRoute();
  if (!document.hidden && name !== "live") {
    try {
      await VIEWS[name](argument);
    } catch (error) {
      setStatus(error.message, true);
    }
  }
  if (!document.hidden && name !== "approvals") {
    showApprovals().catch(() => {});
  }
  window.setTimeout(refreshView, VIEW_REFRESH_MS);
}

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/dashboard/logout", { method: "POST", credentials: "same-origin", headers: { "x-capsem-admin": "1" } });
  window.location.replace("/dashboard");
});
window.addEventListener("hashchange", render);
window.addEventListener("resize", () => {
  for (const [key, chart] of Object.entries(state.charts)) {
    const container = document.getElementById("chart-" + key);
    chart.setSize({ width: Math.max(container.clientWidth, 300), height: 220 });
  }
});

render().then(() => {
  window.setTimeout(tick, LIVE_POLL_MS);
  window.setTimeout(refreshView, VIEW_REFRESH_MS);
});
