// How the dashboard writes times, numbers, tenants and statuses: one 24-hour clock with the date
// (this browser's time zone, or UTC when the header's box is ticked), numbers with digit grouping.
"use strict";

const Format = (() => {
  const UTC_KEY = "capsem-dashboard-utc";
  const numbers = new Intl.NumberFormat("en-US");
  const pad = (value, width = 2) => String(value).padStart(width, "0");
  let utc = false;
  try {
    utc = window.localStorage.getItem(UTC_KEY) === "1";
  } catch (error) {
    utc = false;
  }

  function parts(seconds) {
    const date = new Date(seconds * 1000);
    return utc
      ? [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCHours(), date.getUTCMinutes(),
        date.getUTCSeconds()]
      : [date.getFullYear(), date.getMonth() + 1, date.getDate(), date.getHours(), date.getMinutes(), date.getSeconds()];
  }

  // "2025-01-31 14:05:09": the date, then a 24-hour clock, everywhere a time is shown.
  function dateTime(seconds) {
    if (typeof seconds !== "number") return "";
    const [year, month, day, hour, minute, second] = parts(seconds);
    return `${year}-${pad(month)}-${pad(day)} ${pad(hour)}:${pad(minute)}:${pad(second)}`;
  }

  function hourMinute(seconds) {
    const [, , , hour, minute] = parts(seconds);
    return `${pad(hour)}:${pad(minute)}`;
  }

  // The exact instant, for a tooltip: ISO 8601 in UTC with milliseconds.
  function iso(seconds) {
    return typeof seconds === "number" ? new Date(seconds * 1000).toISOString() : "";
  }

  // "2025-01-31 14:05[:09]" in the zone shown, as unix seconds (NaN when it is not one).
  function parseDateTime(text) {
    const match = /^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$/.exec(text || "");
    if (!match) return NaN;
    const [year, month, day, hour, minute, second] = match.slice(1).map((part) => Number(part || 0));
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return NaN;
    const millis = utc
      ? Date.UTC(year, month - 1, day, hour, minute, second)
      : new Date(year, month - 1, day, hour, minute, second).getTime();
    return millis / 1000;
  }

  function zoneName() {
    if (utc) return "UTC";
    const minutes = -new Date().getTimezoneOffset();
    const sign = minutes >= 0 ? "+" : "-";
    return `UTC${sign}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
  }

  function integer(value) {
    return typeof value === "number" && Number.isFinite(value) ? numbers.format(Math.round(value)) : "";
  }

  // Milliseconds: two decimals below 10, one below 1000, whole (grouped) above.
  function millis(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return "";
    if (value < 10) return value.toFixed(2);
    if (value < 1000) return value.toFixed(1);
    return numbers.format(Math.round(value));
  }

  // US dollars: cents above a dollar, up to four decimals below it (spend of a few tokens is small);
  // anything above zero that would round to $0.0000 reads "< $0.0001".
  function usd(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return "";
    if (value > 0 && value < 0.00005) return "< $0.0001";
    const digits = Math.abs(value) < 1 ? 4 : 2;
    return new Intl.NumberFormat("en-US", {
      style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: digits,
    }).format(value);
  }

  function short(id) {
    return id ? String(id).slice(0, 12) : "";
  }

  // A tenant as people know it: its name when the audit trail or the gateway names it; else its id,
  // shortened when it is a hash (a name the gateway put in the id is shown whole).
  function tenant(row) {
    if (row && row.tenant_name) return row.tenant_name;
    const id = (row && row.tenant_id) || "";
    return /^[0-9a-f]{24,}$/.test(id) ? short(id) : id;
  }

  return {
    get utc() {
      return utc;
    },
    setUtc(value) {
      utc = Boolean(value);
      try {
        window.localStorage.setItem(UTC_KEY, utc ? "1" : "0");
      } catch (error) {
        // A private window may refuse storage: the choice lasts for this page only.
      }
    },
    dateTime, hourMinute, iso, parseDateTime, zoneName, integer, millis, usd, short, tenant,
  };
})();
