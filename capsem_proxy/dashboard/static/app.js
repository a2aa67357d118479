// capsem-proxy dashboard: reads the admin API with the session cookie and renders plain tables.
// Every value from the audit trail is inserted as text (textContent), never as HTML: reasons,
// tool names and ids can carry caller-controlled strings. Formatting is in format.js, the
// filters (address, form, API query) in filters.js.
"use strict";

const LIVE_POLL_MS = 1500;
const VIEW_REFRESH_MS = 5000;
const MAX_LIVE_ROWS = 300;
const PAGE_ROWS = 200;
const FILTERED_VIEWS = new Set(["live", "blocked", "sessions", "overview", "spend"]);
// Views filtered by time only: the links in their tables open the Live view with the filter.
const TIME_ONLY_VIEWS = new Set(["overview", "spend"]);

const state = {
  view: "live",
  filters: {},
  filterKey: null, // the view and filters the tables were loaded for
  requestSeq: null, // newest request row seen (live tail cursor)
  decisionSeq: null,
  older: null, // cursor of the next (older) page of requests, when not tailing
  livePoll: null,
  charts: {},
  spendGroup: "tenant", // what the Spend view sums by: tenant, key, model or provider
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
    const error = new Error(detail);
    error.status = response.status;
    throw error;
  }
  return payload;
}

function withParams(path, params) {
  const query = params.toString();
  return query ? path + (path.includes("?") ? "&" : "?") + query : path;
}

function idLink(prefix, id, label) {
  if (!id) return el("span");
  return el("a", { href: "#" + prefix + "/" + encodeURIComponent(id), text: label || Format.short(id), title: id });
}

// A link that narrows the current view to one value (a tenant, a policy), keeping the other filters.
function filterLink(name, value, label, title) {
  if (!value) return el("span");
  const view = FILTERED_VIEWS.has(state.view) && !TIME_ONLY_VIEWS.has(state.view) ? state.view : "live";
  const query = Filters.toQuery({ ...state.filters, [name]: value });
  return el("a", { href: "#" + view + "?" + query, text: label || value, title: title || "show only " + value });
}

function timeCell(seconds) {
  return el("td", { text: Format.dateTime(seconds), title: Format.iso(seconds), className: "time" });
}

function tenantCell(row) {
  const title = row.tenant_name ? row.tenant_name + " (" + row.tenant_id + ")" : row.tenant_id;
  // A name may be long and wraps; a short id never needs to.
  return el("td", { className: row.tenant_name ? "wrap" : "" }, filterLink("tenant", row.tenant_id, Format.tenant(row),
    title));
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

function numberCell(text) {
  return el("td", { text, className: "number" });
}

// --- reasons and statuses -----------------------------------------------------------------

// A decision's reason: its category and its text ("policy_violation: Detected ..."). Request rows
// carry their governing decision's text too (the admin API adds `details` and `policy`).
function reasonText(row) {
  return [row.reason, row.details].filter(Boolean).join(": ");
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
  } else if (row.status >= 400) {
    cell.classList.add("status-error");
  }
  return cell;
}

// --- rows --------------------------------------------------------------------------------

function requestRow(row) {
  const tr = el(
    "tr",
    { className: "request-row", title: "request " + row.request_id + " (click for every decision)" },
    timeCell(row.started_at),
    tenantCell(row),
    el("td", {}, idLink("session", row.session_id)),
    el("td", { text: row.agent_id || "", className: "wrap" }),
    el("td", { text: row.provider || "" }),
    el("td", { text: row.model || "", className: "wrap" }),
    statusCell(row),
    verdictCell(row.verdict),
    el("td", { className: "wrap policy" }, filterLink("policy", row.policy)),
    el("td", { text: reasonText(row), className: "reason" }),
    numberCell(Format.millis(row.latency_ms)),
  );
  tr.dataset.requestId = row.request_id || "";
  if (row.verdict && row.verdict !== "ALLOW") tr.classList.add("flagged");
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
    timeCell(row.recorded_at),
    el("td", {}, idLink("request", row.request_id)),
    el("td", {}, idLink("session", row.session_id)),
    el("td", { className: "wrap policy" }, filterLink("policy", row.policy)),
    el("td", { text: row.hook || "" }),
    verdictCell(row.verdict, row.shadow),
    el("td", { text: reasonText(row), className: "reason" }),
    el("td", { text: row.subject || "", className: "wrap" }),
    numberCell(Format.millis(row.latency_ms)),
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

function appendRows(tableId, rows, makeRow) {
  const body = document.querySelector("#" + tableId + " tbody");
  for (const row of rows) body.append(makeRow(row));
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

// --- filters -----------------------------------------------------------------------------

function nowSeconds() {
  return Date.now() / 1000;
}

function params(table, blockedOnly) {
  return Filters.apiParams(table, state.filters, nowSeconds(), blockedOnly);
}

function emptyText(what) {
  return Filters.active(state.filters) ? "no " + what + " match these filters" : "no " + what + " recorded yet";
}

function showFilterNote(text) {
  const note = document.getElementById("filter-note");
  note.textContent = text || "";
  note.hidden = !text;
}

function updateExports(blockedOnly) {
  let requests;
  let decisions;
  try {
    requests = params("requests", blockedOnly);
    decisions = params("decisions", blockedOnly);
  } catch (error) {
    return;
  }
  for (const format of ["csv", "jsonl"]) {
    document.getElementById("export-" + format)
      .setAttribute("href", withParams("/admin/export/requests?format=" + format, requests));
    document.getElementById("export-decisions-" + format)
      .setAttribute("href", withParams("/admin/export/decisions?format=" + format, decisions));
  }
}

function syncFilterForm(name) {
  const form = document.getElementById("filters");
  form.hidden = !FILTERED_VIEWS.has(name);
  // Sessions are filtered by who and when only; the overview by when.
  form.classList.toggle("sessions", name === "sessions");
  form.classList.toggle("overview", name === "overview");
  form.classList.toggle("spend", name === "spend");
  Filters.fillForm(form, state.filters);
  // Spend has no live tail: with no range chosen it shows the last 24 hours, and says so.
  if (name === "spend" && Filters.isLive(state.filters)) form.elements.namedItem("range").value = "24h";
}

function applyForm(event) {
  if (event) event.preventDefault();
  const filters = Filters.readForm(document.getElementById("filters"));
  try {
    Filters.timeWindow(filters, nowSeconds());
  } catch (error) {
    setStatus(error.message, true);
    return;
  }
  const view = FILTERED_VIEWS.has(state.view) ? state.view : "live";
  const query = Filters.toQuery(filters);
  const target = "#" + view + (query ? "?" + query : "");
  if (window.location.hash === target) {
    state.filterKey = null;
    render();
  } else {
    window.location.hash = target;
  }
}

// --- live view (and the same tables over a time range) -----------------------------------

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
  const key = state.filterKey;
  if (state.decisionSeq === null) {
    const page = await api(withParams("/admin/decisions?limit=100", params("decisions")));
    if (key !== state.filterKey) return;
    fillTable("live-decisions", page.decisions, decisionRow, emptyText("decisions"));
    state.decisionSeq = maxSeq(page.decisions, 0);
  } else {
    const page = await api(withParams("/admin/decisions?after_seq=" + state.decisionSeq + "&limit=500",
      params("decisions")));
    if (key !== state.filterKey) return;
    prependRows("live-decisions", page.decisions, decisionRow);
    state.decisionSeq = Math.max(maxSeq(page.decisions, state.decisionSeq), (page.next || {}).after_seq || 0);
  }
  if (state.requestSeq === null) {
    const page = await api(withParams("/admin/requests?limit=100", params("requests")));
    if (key !== state.filterKey) return;
    fillTable("live-requests", page.requests, requestRow, emptyText("requests"));
    state.requestSeq = maxSeq(page.requests, 0);
  } else {
    const page = await api(withParams("/admin/requests?after_seq=" + state.requestSeq + "&limit=500",
      params("requests")));
    if (key !== state.filterKey) return;
    prependRows("live-requests", page.requests, requestRow);
    state.requestSeq = Math.max(maxSeq(page.requests, state.requestSeq), (page.next || {}).after_seq || 0);
  }
}

function noteScan(page) {
  if (page.scan_limited) {
    showFilterNote(
      "Searched the newest 20,000 rows these filters reach; older matches may exist. " +
      "Use \u201cLoad older requests\u201d to search further back.",
    );
  }
}

// A fixed time range: one page of each table, newest first, and older requests on demand.
async function showRange() {
  const [requests, decisions] = await Promise.all([
    api(withParams("/admin/requests?limit=" + PAGE_ROWS, params("requests"))),
    api(withParams("/admin/decisions?limit=" + PAGE_ROWS, params("decisions"))),
  ]);
  fillTable("live-requests", requests.requests, requestRow, emptyText("requests"));
  fillTable("live-decisions", decisions.decisions, decisionRow, emptyText("decisions"));
  state.older = requests.next && requests.next.before_seq ? requests.next.before_seq : null;
  document.getElementById("live-older").hidden = state.older === null;
  showFilterNote("");
  noteScan(requests);
}

async function loadOlder() {
  if (state.older === null) return;
  const query = params("requests");
  query.set("before_seq", String(state.older));
  const page = await api(withParams("/admin/requests?limit=" + PAGE_ROWS, query));
  const body = document.querySelector("#live-requests tbody");
  const empty = body.querySelector("td.empty");
  if (empty && page.requests.length) empty.parentElement.remove();
  appendRows("live-requests", page.requests, requestRow);
  state.older = page.next && page.next.before_seq ? page.next.before_seq : null;
  document.getElementById("live-older").hidden = state.older === null;
  showFilterNote("");
  noteScan(page);
}

async function showLive() {
  const live = Filters.isLive(state.filters);
  document.getElementById("decisions-scope").textContent =
    state.filters.verdict || state.filters.allow ? "" : "other than ALLOW";
  document.getElementById("live-mode").textContent = live ? "live" : "in the chosen time range";
  document.getElementById("live-decisions-mode").textContent = live ? "live" : "in the chosen time range";
  updateExports(false);
  if (!live) {
    if (state.requestSeq !== "range") {
      state.requestSeq = "range";
      await showRange();
    }
    return;
  }
  document.getElementById("live-older").hidden = true;
  showFilterNote("");
  await pollLive();
}

// --- other views -------------------------------------------------------------------------

async function showBlocked() {
  updateExports(true);
  const [requests, decisions] = await Promise.all([
    api(withParams("/admin/requests?limit=" + PAGE_ROWS, params("requests", true))),
    api(withParams("/admin/decisions?limit=" + PAGE_ROWS, params("decisions", true))),
  ]);
  fillTable("blocked-requests", requests.requests, requestRow, emptyText("blocked requests"));
  fillTable("blocked-decisions", decisions.decisions, decisionRow, emptyText("blocking decisions"));
}

async function showSessions() {
  const page = await api(withParams("/admin/sessions?limit=" + PAGE_ROWS, params("sessions")));
  fillTable(
    "sessions",
    page.sessions,
    (session) =>
      el(
        "tr",
        {},
        timeCell(session.last_at),
        el("td", {}, idLink("session", session.session_id, session.session_id)),
        tenantCell(session),
        el("td", { text: (session.agent_ids || []).join(", "), className: "wrap" }),
        numberCell(Format.integer(session.requests)),
        numberCell(Format.integer(session.blocked)),
        numberCell(Format.integer(session.input_tokens)),
        numberCell(Format.integer(session.output_tokens)),
      ),
    emptyText("sessions"),
  );
}

function timelineRow(item) {
  const isRequest = item.type === "request";
  const when = isRequest ? item.started_at : item.recorded_at;
  const what = isRequest
    ? [item.provider, item.model, statusText(item)].filter((part) => part !== undefined && part !== "").join(" ")
    : [item.policy, item.hook, item.subject].filter(Boolean).join(" ");
  return el(
    "tr",
    { className: "timeline-" + item.type },
    timeCell(when),
    el("td", { text: item.type }),
    el("td", {}, idLink("request", item.request_id)),
    el("td", { text: what, className: "wrap" }),
    verdictCell(item.verdict, !isRequest && item.shadow),
    el("td", { text: reasonText(item), className: "reason" }),
  );
}

async function showSession(sessionId) {
  document.getElementById("session-title").textContent = sessionId;
  const page = await api("/admin/sessions/" + encodeURIComponent(sessionId));
  // A request row names only its governing decision; its text is on the decision row.
  const texts = new Map(page.timeline.filter((item) => item.type === "decision")
    .map((item) => [item.decision_id, item]));
  for (const item of page.timeline) {
    const governing = item.type === "request" && texts.get(item.decision_id);
    if (governing && !item.details) {
      item.details = governing.details;
      item.policy = governing.policy;
    }
  }
  fillTable("session-timeline", page.timeline, timelineRow, "no events");
}

const REQUEST_FIELDS = [
  ["started_at", "time"], ["request_id", "request id"], ["tenant", "tenant"], ["session_id", "session"],
  ["agent_id", "agent"], ["provider", "provider"], ["operation", "operation"], ["route", "route"],
  ["model", "model"], ["stream", "streamed"], ["status", "status"], ["verdict", "verdict"], ["policy", "policy"],
  ["reason", "reason"], ["decision_id", "decision id"], ["latency_ms", "latency ms"],
  ["upstream_ms", "upstream ms"], ["ttfb_ms", "first byte ms"], ["input_tokens", "tokens in"],
  ["output_tokens", "tokens out"], ["prompt", "prompt (stored)"], ["answer", "answer (stored)"], ["seq", "seq"],
  ["prev_hash", "previous hash"], ["hash", "hash"],
];

function requestFieldText(request, name) {
  const value = request[name];
  if (name === "started_at") return Format.dateTime(value) + " (" + Format.zoneName() + ")";
  if (name === "status") return statusText(request);
  if (name === "reason") return reasonText(request);
  if (name === "tenant") return request.tenant_name ? request.tenant_name + " (" + request.tenant_id + ")" : request.tenant_id;
  if (name === "stream") return value ? "yes" : "no";
  if (name.endsWith("_ms")) return Format.millis(value);
  if (name.endsWith("_tokens") || name === "seq") return Format.integer(value);
  return value === undefined || value === null ? "" : String(value);
}

function requestSummary(request, decisions) {
  const box = document.getElementById("request-summary");
  const acted = decisions.filter((row) => row.verdict !== "ALLOW");
  const verdict = el("span", { text: request.verdict || "?", className: "verdict verdict-" +
    String(request.verdict || "").toLowerCase() });
  const lines = [el("p", {}, verdict, " ", el("span", { text: statusText(request) }))];
  if (request.policy) {
    lines.push(el("p", { text: "by " + request.policy + ": " + reasonText(request) }));
  }
  lines.push(el("p", {
    text: Format.integer(decisions.length) + " decisions, " + Format.integer(acted.length) + " other than ALLOW" +
      (decisions.some((row) => row.shadow) ? " (shadow policies included)" : ""),
    className: "muted",
  }));
  box.replaceChildren(...lines);
}

async function showRequest(requestId) {
  document.getElementById("request-title").textContent = requestId;
  const page = await api("/admin/requests/" + encodeURIComponent(requestId));
  const request = page.request || {};
  const decisions = page.decisions || [];
  requestSummary(request, decisions);
  const fields = document.getElementById("request-fields");
  fields.replaceChildren();
  for (const [name, label] of REQUEST_FIELDS) {
    const present = name === "tenant" ? request.tenant_id : request[name];
    if (present === undefined || present === null || present === "") continue;
    fields.append(el("dt", { text: label }), el("dd", { text: requestFieldText(request, name) }));
  }
  const sessionId = request.session_id || (decisions.find((row) => row.session_id) || {}).session_id;
  const link = document.getElementById("request-session-link");
  link.hidden = !sessionId;
  if (sessionId) link.setAttribute("href", "#session/" + encodeURIComponent(sessionId));
  document.getElementById("request-decision-count").textContent = "(" + Format.integer(decisions.length) + ")";
  fillTable("request-decisions", decisions, decisionRow, "no decisions");
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
      // The time axis and the legend on the same 24-hour clock as the tables.
      series: [{ value: (chart, seconds) => (seconds === null ? "" : Format.dateTime(seconds)) }, ...series],
      axes: [
        {
          // Hours and minutes; with the month and day once the window spans more than a day.
          values: (chart, splits) => splits.map((seconds) => (splits[splits.length - 1] - splits[0] > 86400
            ? Format.dateTime(seconds).slice(5, 16) : Format.hourMinute(seconds))),
        },
        { size: 60, values: (chart, splits) => splits.map((value) => Format.integer(value)) },
      ],
      scales: { x: { time: true } },
    };
    state.charts[key] = new uPlot(options, data, container);
  } else {
    state.charts[key].setData(data);
    state.charts[key].setSize({ width, height: 220 });
  }
}

const OVERVIEW_WINDOW_S = 3600;
// Bucket sizes the overview picks from: the smallest that draws the window in at most 240 points.
const OVERVIEW_BUCKETS = [[60, "minute"], [300, "5 minutes"], [900, "15 minutes"], [3600, "hour"],
  [21600, "6 hours"], [86400, "day"]];
const RANGE_TITLES = { "15m": "Last 15 minutes", "1h": "Last hour", "6h": "Last 6 hours", "24h": "Last 24 hours",
  "7d": "Last 7 days", "30d": "Last 30 days" };

async function showOverview() {
  const now = Math.floor(Date.now() / 1000);
  // The summary runs from `since` to now: a custom range gives its start.
  const [start] = Filters.timeWindow(state.filters, now);
  const since = Math.floor(start === null ? now - OVERVIEW_WINDOW_S : Math.min(start, now - 60));
  const [bucketSeconds, bucketName] =
    OVERVIEW_BUCKETS.find(([seconds]) => (now - since) / seconds <= 240) || OVERVIEW_BUCKETS[OVERVIEW_BUCKETS.length - 1];
  document.getElementById("overview-title").textContent =
    RANGE_TITLES[state.filters.range] || (start === null ? "Last hour" : "Since " + Format.dateTime(since));
  for (const label of document.querySelectorAll(".overview-bucket")) label.textContent = bucketName;
  const summary = await api("/admin/summary?since=" + since + "&bucket=" + bucketSeconds);
  document.getElementById("stat-requests").textContent = Format.integer(summary.requests);
  document.getElementById("stat-blocked").textContent = Format.integer(summary.blocked);
  document.getElementById("stat-verdicts").textContent =
    Object.entries(summary.by_verdict || {})
      .map(([verdict, count]) => verdict + " " + Format.integer(count))
      .join(" · ") || "-";
  // Every bucket of the window gets a point, so the time axis always spans the whole window:
  // no requests means a count of 0 and no latency (a gap in the line).
  const byStart = new Map((summary.latency || []).map((bucket) => [bucket.t, bucket]));
  const times = [];
  for (let t = Math.floor(since / bucketSeconds) * bucketSeconds; t <= now; t += bucketSeconds) {
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
    (row) => el("tr", {}, el("td", {}, filterLink("policy", row.policy)), verdictCell(row.verdict),
      numberCell(Format.integer(row.count))),
    "no decisions",
  );
  fillTable(
    "top-tenants",
    summary.top_tenants || [],
    (row) => el("tr", {}, tenantCell(row), numberCell(Format.integer(row.requests)),
      numberCell(Format.integer(row.blocked))),
    "no requests",
  );
}

// --- spend ---------------------------------------------------------------------------------

const SPEND_WINDOW_S = 86400;
const SPEND_GROUP_TITLES = { tenant: "tenant", key: "gateway key", model: "model", provider: "provider" };

// A gateway key by its id, with whose it is (tenant, name, the last characters of the key, whether it
// still works) when the key listing has it.
function spendGroupCell(group, value, keys) {
  if (group === "tenant") return tenantCell({ tenant_id: value });
  if (group === "model" || group === "provider") return el("td", { className: "wrap" }, filterLink(group, value));
  const key = keys && keys.get(value);
  const cell = el("td", { text: value, className: "wrap" });
  if (key) {
    const about = [key.tenant, key.name, key.hint, key.status && key.status !== "active" ? key.status : ""];
    cell.append(" ", el("span", { text: about.filter(Boolean).join(" \u00b7 "), className: "muted" }));
  }
  return cell;
}

// The gateway keys by id, for the Spend page's key rows; none when the listing cannot be read.
async function keysById() {
  try {
    const page = await api("/admin/keys");
    return new Map((page.keys || []).map((key) => [key.id, key]));
  } catch (error) {
    if (error.message === "not logged in") throw error;
    return new Map();
  }
}

function costCell(value) {
  return el("td", { text: Format.usd(value), className: "number", title: "$" + String(value) });
}

function shareText(cost, total) {
  return total > 0 ? (100 * cost / total).toFixed(1) + " %" : "";
}

function spendRow(group, total, keys) {
  return (row) => el("tr", { className: "spend-row" },
    spendGroupCell(group, row.group, keys),
    numberCell(Format.integer(row.requests)),
    numberCell(Format.integer(row.input_tokens)),
    numberCell(Format.integer(row.output_tokens)),
    costCell(row.cost_usd),
    numberCell(shareText(row.cost_usd, total.cost_usd)));
}

function showSpendTotals(total) {
  const cards = { "spend-cost": Format.usd(total.cost_usd), "spend-requests": Format.integer(total.requests),
    "spend-input": Format.integer(total.input_tokens), "spend-output": Format.integer(total.output_tokens) };
  for (const [id, text] of Object.entries(cards)) document.getElementById(id).textContent = text || "-";
}

// What each tenant, gateway key, model or provider used and cost, from a start to now. Usage is kept
// in hourly totals, so the window starts at the top of the hour its start falls in.
async function showSpend() {
  const now = nowSeconds();
  const [start] = Filters.timeWindow(state.filters, now);
  const since = Math.floor(start === null ? now - SPEND_WINDOW_S : Math.min(start, now - 60));
  const group = state.spendGroup;
  document.getElementById("spend-group").value = group;
  document.getElementById("spend-group-title").textContent = SPEND_GROUP_TITLES[group];
  const title = RANGE_TITLES[state.filters.range];
  document.getElementById("spend-title").textContent = title
    ? "Spend in the " + title.toLowerCase()
    : start === null ? "Spend in the last 24 hours" : "Spend since " + Format.dateTime(since);
  let page;
  try {
    page = await api("/admin/spend?group_by=" + encodeURIComponent(group) + "&since=" + since);
  } catch (error) {
    if (error.status !== 404) throw error;
    // No gateway: nothing records spend. Say so where the rows would be.
    document.getElementById("spend-window").textContent = "";
    showSpendTotals({});
    document.querySelector("#spend tfoot").replaceChildren();
    fillTable("spend", [], spendRow(group, {}), error.message);
    return;
  }
  const from = Math.floor(page.since / 3600) * 3600;
  document.getElementById("spend-window").textContent = "Hourly totals from " + Format.dateTime(from) + " (" +
    Format.zoneName() + ") to now; a request counts once its answer is over (a stream at its end).";
  const total = page.total || {};
  showSpendTotals(total);
  const rows = [...(page.rows || [])].sort((a, b) => b.cost_usd - a.cost_usd || b.requests - a.requests);
  const keys = group === "key" && rows.length ? await keysById() : null;
  fillTable("spend", rows, spendRow(group, total, keys), "no spend recorded in this window");
  const foot = document.querySelector("#spend tfoot");
  foot.replaceChildren();
  if (rows.length > 1) {
    foot.append(el("tr", {}, el("td", { text: "total" }), numberCell(Format.integer(total.requests)),
      numberCell(Format.integer(total.input_tokens)), numberCell(Format.integer(total.output_tokens)),
      costCell(total.cost_usd), numberCell("100.0 %")));
  }
}

async function decide(decisionId, action) {
  try {
    // The custom header is what a cross-site form cannot send: it marks the POST as the dashboard's.
    await api("/admin/approvals/" + encodeURIComponent(decisionId) + "/" + action, {
      method: "POST",
      headers: { "x-capsem-admin": "1" },
    });
    setStatus("decision " + Format.short(decisionId) + " " + (action === "approve" ? "approved" : "denied"), false);
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
        timeCell(held.held_at),
        el("td", { text: Format.short(held.decision_id), title: held.decision_id }),
        el("td", { text: Format.tenant(held), title: held.tenant_id }),
        el("td", { text: held.policy }),
        el("td", { text: held.reason, className: "reason" }),
        el("td", { text: held.details, className: "wrap" }),
        el(
          "td",
          { className: "actions" },
          el("button", { text: "Approve", className: "approve write",
            onClick: () => decide(held.decision_id, "approve") }),
          el("button", { text: "Deny", className: "deny write", onClick: () => decide(held.decision_id, "deny") }),
        ),
      ),
    "nothing is waiting for approval",
  );
}

// --- navigation --------------------------------------------------------------------------

const VIEWS = {
  live: showLive,
  blocked: showBlocked,
  sessions: showSessions,
  session: showSession,
  request: showRequest,
  overview: showOverview,
  spend: showSpend,
  approvals: showApprovals,
};

function currentRoute() {
  const [path] = window.location.hash.replace(/^#/, "").split("?");
  const [name, ...rest] = path.split("/");
  const argument = rest.length ? decodeURIComponent(rest.join("/")) : null;
  if (!VIEWS[name]) return { name: "live", argument: null, filters: Filters.fromHash(window.location.hash) };
  return { name, argument, filters: Filters.fromHash(window.location.hash) };
}

async function render() {
  const { name, argument, filters } = currentRoute();
  state.view = name;
  const key = name + "?" + Filters.toQuery(filters) + (Format.utc ? "&utc" : "");
  if (FILTERED_VIEWS.has(name)) {
    if (key !== state.filterKey) {
      state.filterKey = key;
      state.filters = filters;
      state.requestSeq = null;
      state.decisionSeq = null;
      state.older = null;
    }
  }
  syncFilterForm(name);
  for (const section of document.querySelectorAll("section.view")) {
    section.hidden = section.id !== "view-" + name;
  }
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("active", link.dataset.nav === name);
    // Moving between the filtered views keeps the filters.
    if (FILTERED_VIEWS.has(link.dataset.nav)) {
      const query = Filters.toQuery(state.filters);
      link.setAttribute("href", "#" + link.dataset.nav + (query ? "?" + query : ""));
    }
  }
  try {
    await VIEWS[name](argument);
    setStatus("updated " + Format.dateTime(nowSeconds()).slice(11), false);
  } catch (error) {
    setStatus(error.message, true);
  }
}

async function tick() {
  if (!document.hidden && state.view === "live" && Filters.isLive(state.filters)) {
    try {
      await pollLive();
      setStatus("updated " + Format.dateTime(nowSeconds()).slice(11), false);
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
document.getElementById("filters").addEventListener("submit", applyForm);
document.getElementById("f-range").addEventListener("change", (event) => {
  document.getElementById("filters").classList.toggle("custom", event.target.value === "custom");
  if (event.target.value !== "custom") applyForm();
});
document.getElementById("f-verdict").addEventListener("change", () => applyForm());
document.getElementById("f-allow").addEventListener("change", () => applyForm());
document.getElementById("f-clear").addEventListener("click", () => {
  const view = FILTERED_VIEWS.has(state.view) ? state.view : "live";
  window.location.hash = "#" + view;
});
document.getElementById("spend-group").addEventListener("change", (event) => {
  state.spendGroup = event.target.value;
  showSpend().catch((error) => setStatus(error.message, true));
});
document.getElementById("live-older").addEventListener("click", () => {
  loadOlder().catch((error) => setStatus(error.message, true));
});
const utcBox = document.getElementById("utc");
utcBox.checked = Format.utc;
utcBox.addEventListener("change", () => {
  Format.setUtc(utcBox.checked);
  for (const chart of Object.values(state.charts)) chart.destroy();
  state.charts = {};
  for (const container of document.querySelectorAll(".chart")) container.replaceChildren();
  render();
});
window.addEventListener("hashchange", render);
window.addEventListener("resize", () => {
  for (const [key, chart] of Object.entries(state.charts)) {
    const container = document.getElementById("chart-" + key);
    chart.setSize({ width: Math.max(container.clientWidth, 300), height: 220 });
  }
});

// The caller's role, where the admin API tells it (`GET /admin/whoami`): a viewer is shown no button
// that writes (the API refuses those writes anyway). Without that route every session is an admin's.
async function loadRole() {
  let role = "admin";
  try {
    const response = await fetch("/admin/whoami", { credentials: "same-origin", headers: { accept: "application/json" } });
    if (response.ok) role = String((await response.json()).role || "admin");
  } catch (error) {
    role = "admin";
  }
  document.body.dataset.role = role;
  document.getElementById("role").textContent = role === "admin" ? "" : role + (role === "viewer" ? " (read-only)" : "");
}

loadRole().then(render).then(() => {
  window.setTimeout(tick, LIVE_POLL_MS);
  window.setTimeout(refreshView, VIEW_REFRESH_MS);
});
