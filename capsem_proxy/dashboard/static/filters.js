// The triage filters: kept in the page's address (`#live?verdict=BLOCK&q=key`, so a filtered view can
// be shared or bookmarked), shown in the filter form, and turned into admin API query strings.
"use strict";

const Filters = (() => {
  const FIELDS = [
    "range", "from", "to", "verdict", "q", "tenant", "policy", "provider", "model", "status", "session_id", "allow",
  ];
  const RANGES = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000 };
  const BLOCKING = "BLOCK,CONFIRM,CLARIFY,REPLAN";
  const NOT_ALLOW = "LOG,REDACT,CONFIRM,CLARIFY,REPLAN,BLOCK";
  // Filters each table understands (status is a request's HTTP status).
  const PASSED = {
    requests: ["q", "tenant", "policy", "provider", "model", "status", "session_id"],
    decisions: ["q", "tenant", "policy", "provider", "model", "session_id"],
    sessions: ["tenant", "provider", "model"],
  };

  // The filters in the address after the view name: `#live?verdict=BLOCK`.
  function fromHash(hash) {
    const query = (hash || "").split("?")[1] || "";
    const params = new URLSearchParams(query);
    const filters = {};
    for (const name of FIELDS) {
      const value = (params.get(name) || "").trim();
      if (value) filters[name] = value;
    }
    return filters;
  }

  function toQuery(filters) {
    const params = new URLSearchParams();
    for (const name of FIELDS) if (filters[name]) params.set(name, filters[name]);
    return params.toString();
  }

  function isLive(filters) {
    return !filters.range || filters.range === "live";
  }

  // [since, until] in unix seconds (null where open); throws with a message for a bad custom range.
  function timeWindow(filters, now) {
    if (isLive(filters)) return [null, null];
    if (RANGES[filters.range]) return [now - RANGES[filters.range], null];
    const since = filters.from ? Format.parseDateTime(filters.from) : null;
    const until = filters.to ? Format.parseDateTime(filters.to) : null;
    if (Number.isNaN(since)) throw new Error("from: write a date and time like 2025-01-31 08:00");
    if (Number.isNaN(until)) throw new Error("to: write a date and time like 2025-01-31 18:00");
    if (since !== null && until !== null && until < since) throw new Error("to is before from");
    return [since, until];
  }

  // The admin API query for `table` (requests, decisions or sessions) under `filters`; `blockedOnly`
  // is the Blocked view, which shows only what stopped something whatever the verdict filter says.
  function apiParams(table, filters, now, blockedOnly) {
    const params = new URLSearchParams();
    for (const name of PASSED[table]) if (filters[name]) params.set(name, filters[name]);
    const [since, until] = timeWindow(filters, now);
    if (since !== null) params.set("since", String(Math.floor(since)));
    if (until !== null) params.set("until", String(Math.ceil(until)));
    if (table === "sessions") return params;
    let verdict = blockedOnly && !filters.verdict ? "BLOCKING" : filters.verdict;
    // Every policy records an ALLOW on every request: the decision tables leave those out unless
    // asked (`allow`); a request's own page shows them all.
    if (table === "decisions" && !verdict && !filters.allow) verdict = "NOT_ALLOW";
    if (verdict === "BLOCKING") {
      if (table === "requests") params.set("blocked", "true");
      else params.set("verdict", BLOCKING);
    } else if (verdict === "NOT_ALLOW") {
      params.set("verdict", NOT_ALLOW);
    } else if (verdict) {
      params.set("verdict", verdict);
    }
    return params;
  }

  function readForm(form) {
    const filters = {};
    for (const name of FIELDS) {
      const input = form.elements.namedItem(name);
      const value = !input ? "" : input.type === "checkbox" ? (input.checked ? "1" : "") : String(input.value).trim();
      if (value) filters[name] = value;
    }
    if (filters.range === "live") delete filters.range;
    if (filters.range !== "custom") {
      delete filters.from;
      delete filters.to;
    }
    return filters;
  }

  function fillForm(form, filters) {
    for (const name of FIELDS) {
      const input = form.elements.namedItem(name);
      if (input && input.type === "checkbox") input.checked = Boolean(filters[name]);
      else if (input) input.value = filters[name] || (name === "range" ? "live" : "");
    }
    form.classList.toggle("custom", filters.range === "custom");
  }

  function active(filters) {
    return Object.keys(filters).length > 0;
  }

  return { fromHash, toQuery, isLive, timeWindow, apiParams, readForm, fillForm, active };
})();
