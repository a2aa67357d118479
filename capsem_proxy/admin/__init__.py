"""The admin API (`/admin/...`) and the dashboard (`/dashboard`); both absent (404) while no admin
token is configured.

Routes (JSON, never cached):
  GET  /admin/requests                       request rows, filtered and paged (`next` cursor), each with
                                             its governing decision's `policy` and `details`
  GET  /admin/requests/{request_id}          one request row and its decisions
  GET  /admin/decisions                      decision rows, filtered and paged
  GET  /admin/sessions                       sessions, newest first
  GET  /admin/sessions/{session_id}          a session's requests and decisions in time order
  GET  /admin/summary?since=&bucket=         counts, top policies and tenants, latency percentiles
  GET  /admin/export/{requests,decisions}    the filtered rows as `format=csv|jsonl`, bounded (export.py)
  GET  /admin/whoami                         the caller's role ({"role": "admin"})
  GET  /admin/approvals                      held requests awaiting a decision
  GET  /admin/approvals/{decision_id}        one held request
  POST /admin/approvals/{decision_id}/approve
  POST /admin/approvals/{decision_id}/deny
  GET  /dashboard                            the dashboard, or its login page (401) without a session
  POST /dashboard/login                      bearer token in, session cookie out
  POST /dashboard/logout

Callers authenticate with `Authorization: Bearer <token>`, or (from the dashboard) with the session
cookie; a POST authenticated by cookie must also carry `x-capsem-admin: 1`, which a cross-site form
cannot send.

Filters (requests and decisions): tenant (a name or an id), tenant_id, session_id, agent_id,
request_id, provider, model, policy (requests: it decided something other than ALLOW), verdict
(comma-separated), blocked, since/until (unix seconds or ISO 8601), q (text in reasons and details),
and for requests status (`403`, `4xx`, `500-504`, comma-separated). Filters no index serves look at
the newest audit.query.MAX_SCAN rows the indexed ones select; a page cut short by that says
`scan_limited` and its `next` cursor continues the search.

Triage modules: `triage` (pages of rows with their governing decisions), `export` (CSV and
JSONL), `tenants` (tenant names).

Modules: `api` (AdminAPI, routing), `auth` (token and cookie checks), `params` (query-string
parsing), `queries` and `dashboard` (each route family), `replies` (reply values and the headers
every response carries). The approval routes live with the rest of CONFIRM, in
`capsem_proxy.confirm.admin_routes`.
"""

from capsem_proxy.admin.api import AdminAPI
from capsem_proxy.admin.params import BadParameter, parse_audit_query

__all__ = ["AdminAPI", "BadParameter", "parse_audit_query"]
