"""The SQL both durable stores run for queries (SQLite and PostgreSQL differ only in a few spellings,
given by a Dialect), and the conversion of what they return into query answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeVar

from capsem_proxy.audit.chain import ChainRow, ChainStart, StoredHead
from capsem_proxy.audit.folding import FOLD_MAX, FOLDED_CONSTANTS, FOLDED_FIELDS, FROM_REQUEST
from capsem_proxy.audit.query import (
    BLOCKING_VERDICTS,
    MAX_SCAN,
    PERCENTILES,
    TIME_COLUMN,
    TIME_SLACK,
    AuditQuery,
    text_fields,
)
from capsem_proxy.audit.rows import COLUMN_NAMES, clean_values, row_dict

__all__ = ["Dialect", "PostgresDialect", "SQLQueries", "SQLiteDialect", "Statements", "whole_groups"]

T = TypeVar("T")

_EQUAL_FILTERS = ("tenant_id", "session_id", "agent_id", "request_id", "provider", "model")
_CONFIRMATIONS = ", ".join(f"'{verdict}'" for verdict in BLOCKING_VERDICTS if verdict != "BLOCK")
_BLOCKING = ", ".join(f"'{verdict}'" for verdict in BLOCKING_VERDICTS)
# query.request_blocked, in SQL.
REQUEST_BLOCKED = f"(verdict = 'BLOCK' OR (verdict IN ({_CONFIRMATIONS}) AND status = 403))"
DECISION_BLOCKED = f"(verdict IN ({_BLOCKING}))"


@dataclass(frozen=True)
class Dialect:
    """How one database spells parameters, bucket numbers, a distinct list and the entries of a JSON array."""

    numbered_params: bool  # $1, $2 (PostgreSQL) rather than ? (SQLite)
    bucket_of: str  # format with {column} and {param}: the integer bucket of a time
    distinct_list: str  # format with {column}: an aggregate of the distinct values
    like: str = "LIKE"  # a case-insensitive LIKE (SQLite's is, for ASCII)
    # The entries of the `allowed` array of request row {alias}, as `a` (a FROM item), and entry {index}
    # of one.
    json_entries: str = "json_each({alias}.allowed) AS a"
    json_item: str = "json_extract(a.value, '$[{index}]')"
    typed: tuple[tuple[str, str], ...] = ()  # kind -> a cast to it, where the item is text


SQLiteDialect = Dialect(False, "CAST({column} / {param} AS INTEGER)", "json_group_array(DISTINCT {column})")
PostgresDialect = Dialect(
    True, "floor({column} / {param})::bigint", "array_agg(DISTINCT {column})", "ILIKE",
    "jsonb_array_elements({alias}.allowed::jsonb) AS a(value)", "(a.value ->> {index})",
    (("real", "::double precision"), ("integer", "::bigint")),
)

_FOLDED_KIND = {"latency_ms": "real", "recorded_at": "real", "count": "integer"}


def folded_decisions_source(dialect: Dialect) -> str:
    """The ALLOW decisions folded into request rows (folding.py) as a FROM item with the columns of
    the decisions table: a folded decision takes its request row's seq, hashes and ids."""
    casts = dict(dialect.typed)
    false = "false" if dialect.numbered_params else "0"
    picks = ["fr.seq"]
    for name in COLUMN_NAMES["decisions"]:
        if name in FROM_REQUEST:
            picks.append(f"fr.{name}")
        elif name in FOLDED_CONSTANTS:
            value = FOLDED_CONSTANTS[name]
            picks.append(false if value is False else "'" + value.replace("'", "''") + "'")
        else:
            item = dialect.json_item.format(index=FOLDED_FIELDS.index(name))
            picks.append(item + casts.get(_FOLDED_KIND.get(name, "text"), ""))
    picks += ["fr.prev_hash", "fr.hash"]
    names = ("seq", *COLUMN_NAMES["decisions"], "prev_hash", "hash")
    folded = ", ".join(f"{pick} AS {name}" for pick, name in zip(picks, names, strict=True))
    entries = dialect.json_entries.format(alias="fr")
    return f"(SELECT {folded} FROM requests fr, {entries} WHERE fr.allowed IS NOT NULL) AS f"


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its wildcards taken literally (escaped with \\)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class _Params:
    """Collects parameter values and hands out their placeholders."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self.dialect.numbered_params else "?"


# Ends a subquery about one request's decisions so that it runs per request row, through the decisions'
# request index: PostgreSQL would otherwise turn EXISTS into a hash (semi-)join that reads every
# decision of the store. An OFFSET keeps its planner from rewriting the EXISTS; SQLite needs the LIMIT
# for an OFFSET and runs correlated subqueries per row anyway.
_PER_ROW = " LIMIT 1 OFFSET 0"


def _in_list(column: str, values: list[Any], param: _Params) -> str:
    return f"{column} IN ({', '.join(param(value) for value in values)})" if values else "1 = 0"


def _indexed_conditions(table: str, q: AuditQuery, param: _Params, *, paging: bool = True) -> list[str]:
    """The filters an index serves: tenant, session, request, time range, seq cursor."""
    conditions = [
        f"{name} = {param(getattr(q, name))}" for name in ("tenant_id", "session_id", "request_id")
        if getattr(q, name) is not None
    ]
    for name, column in (("tenant_ids", "tenant_id"), ("request_ids", "request_id"), ("decision_ids", "decision_id")):
        if getattr(q, name) is not None:
            conditions.append(_in_list(column, [str(value) for value in getattr(q, name)], param))
    time_column = TIME_COLUMN[table]
    # Decisions are bounded through both tables (folded ones live in request rows), by the closer bound.
    bounded_by = ("requests",) if table == "requests" else ("decisions", "requests")
    closer = ("MAX", "MIN") if not param.dialect.numbered_params else ("GREATEST", "LEAST")
    if q.since is not None:
        conditions.append(f"{time_column} >= {param(float(q.since))}")
        if q.seq_bounded_time:
            # The seq of the latest row that started TIME_SLACK before the window: every row of the
            # window was written after it (one index probe; see query.TIME_SLACK).
            lows = [
                f"COALESCE((SELECT seq FROM {source} WHERE {TIME_COLUMN[source]} < "
                f"{param(float(q.since) - TIME_SLACK)} ORDER BY {TIME_COLUMN[source]} DESC LIMIT 1), 0)"
                for source in bounded_by
            ]
            conditions.append(f"seq > {lows[0]}" if len(lows) == 1 else f"seq > {closer[0]}({', '.join(lows)})")
    if q.until is not None:
        conditions.append(f"{time_column} < {param(float(q.until))}")
        if q.seq_bounded_time:
            highs = [
                f"COALESCE((SELECT seq FROM {source} WHERE {TIME_COLUMN[source]} >= "
                f"{param(float(q.until) + TIME_SLACK)} ORDER BY {TIME_COLUMN[source]} LIMIT 1), {2**62})"
                for source in bounded_by
            ]
            conditions.append(f"seq < {highs[0]}" if len(highs) == 1 else f"seq < {closer[1]}({', '.join(highs)})")
    if paging and q.before_seq is not None:
        conditions.append(f"seq < {param(int(q.before_seq))}")
    if paging and q.after_seq is not None:
        conditions.append(f"seq > {param(int(q.after_seq))}")
    return conditions


def _other_conditions(table: str, q: AuditQuery, param: _Params) -> list[str]:
    """The filters no index serves (see AuditQuery.scanned); for requests they may look at the
    request's decisions (`r` is the request row), found through the decisions' request index."""
    conditions = [f"{name} = {param(getattr(q, name))}" for name in ("agent_id", "provider", "model")
                  if getattr(q, name) is not None]
    if q.verdict is not None:
        conditions.append(_in_list("verdict", [str(verdict) for verdict in q.verdict], param))
    if q.blocked is not None:
        blocked = REQUEST_BLOCKED if table == "requests" else DECISION_BLOCKED
        conditions.append(blocked if q.blocked else f"NOT {blocked}")
    like = param.dialect.like
    if table == "decisions":
        if q.policy is not None:
            conditions.append(f"policy = {param(q.policy)}")
        if q.text is not None:
            pattern = _like_pattern(q.text)
            conditions.append("(" + " OR ".join(f"{column} {like} {param(pattern)} ESCAPE '\\'"
                                                for column in text_fields("decisions")) + ")")
        return conditions
    if q.statuses is not None:
        ranges = [f"status BETWEEN {param(int(low))} AND {param(int(high))}" for low, high in q.statuses]
        conditions.append("(" + " OR ".join(ranges) + ")" if ranges else "1 = 0")
    if q.policy is not None:
        conditions.append(
            "EXISTS (SELECT 1 FROM decisions d WHERE d.request_id = r.request_id "
            f"AND d.policy = {param(q.policy)} AND d.verdict <> 'ALLOW'{_PER_ROW})"
        )
    if q.text is not None:
        # One placeholder per use: SQLite's `?` are positional.
        pattern = _like_pattern(q.text)
        of_decisions = " OR ".join(
            f"d.{column} {like} {param(pattern)} ESCAPE '\\'" for column in text_fields("decisions")
        )
        # Folded decisions (folding.py) have no details or subject: only their reason can hold the text.
        folded_reason = param.dialect.json_item.format(index=FOLDED_FIELDS.index("reason"))
        folded_entries = param.dialect.json_entries.format(alias="r")
        conditions.append(
            f"(r.reason {like} {param(pattern)} ESCAPE '\\' OR EXISTS (SELECT 1 FROM decisions d "
            f"WHERE d.request_id = r.request_id AND ({of_decisions}){_PER_ROW}) OR EXISTS (SELECT 1 FROM "
            f"{folded_entries} WHERE {folded_reason} {like} {param(pattern)} ESCAPE '\\'))"
        )
    return conditions


def _conditions(table: str, q: AuditQuery, param: _Params, *, paging: bool = True) -> list[str]:
    return [*_indexed_conditions(table, q, param, paging=paging), *_other_conditions(table, q, param)]


def _ordering(table: str, order: str) -> str:
    """The order of a table's rows by seq; decisions folded into one request share its seq, and their
    ids (made in sequence) order them."""
    return f"seq {order}" if table == "requests" else f"seq {order}, decision_id {order}"


def _where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _columns(table: str) -> str:
    return ", ".join(("seq", *COLUMN_NAMES[table], "prev_hash", "hash"))


def chain_row(table: str, record: Sequence[Any]) -> ChainRow:
    """A stored row (selected with all columns, then its erasure seq and MAC) as a ChainRow."""
    erasure = (int(record[-2]), str(record[-1])) if record[-2] is not None else None
    return ChainRow(table, int(record[0]), tuple(record[1:-4]), record[-4], record[-3], erasure)


def to_dict(table: str, record: Sequence[Any]) -> dict[str, Any]:
    """A stored row (selected with all columns) as a query answer."""
    return row_dict(table, int(record[0]), clean_values(table, record[1:-2]), record[-2], record[-1])


class Statements:
    """The query statements for one dialect; each returns (sql, parameters)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def _top(
        self, table: str, where: Callable[[], str], ordering: str, limit: int, columns: str, arm_ordering: str = "",
        q: AuditQuery | None = None,
    ) -> str:
        """A SELECT of the first `limit` rows of `table` in `ordering` that pass `where` (called once per
        FROM item, in the order of the text, for its placeholders). Decisions are read from the table
        and from the request rows they are folded into (folding.py): each of the two gives its first
        `limit` rows in `arm_ordering` (one its indexes serve: seq alone), then the two are merged;
        the folded ones are left out when `q` can match none of them."""
        if table == "requests":
            return f"SELECT {columns} FROM requests AS r{where()} ORDER BY {ordering} LIMIT {limit}"
        sources = ["decisions"]
        if q is None or may_match_folded(q):
            sources.append(folded_decisions_source(self.dialect))
        arms = [
            f"SELECT {columns} FROM (SELECT {columns} FROM {source}{where()} "
            f"ORDER BY {arm_ordering or ordering} LIMIT {limit}) AS arm"
            for source in sources
        ]
        return f"SELECT {columns} FROM ({' UNION ALL '.join(arms)}) AS d ORDER BY {ordering} LIMIT {limit}"

    def rows(self, table: str, q: AuditQuery) -> tuple[str, list[Any]]:
        """The rows a query selects. With filters no index serves, only the newest MAX_SCAN rows the
        indexed ones select are examined (the inner, index-driven scan), so no query reads a whole table.
        Decisions come FOLD_MAX rows beyond the limit, so that the page can end after the last decision
        folded into the request row it reaches (they share its seq; see SQLQueries.query_decisions)."""
        param = _Params(self.dialect)
        order = "ASC" if q.oldest_first else "DESC"
        ordering = _ordering(table, order)
        limit = q.capped_limit if table == "requests" else q.capped_limit + FOLD_MAX
        columns = _columns(table)
        by_seq = f"seq {order}"
        if not q.scanned(table):
            top = self._top(table, lambda: _where(_conditions(table, q, param)), ordering, limit, columns, by_seq, q)
            return top, param.values
        inner = self._top(table, lambda: _where(_indexed_conditions(table, q, param)), ordering, MAX_SCAN, columns,
                          by_seq, q)
        outer = _where(_other_conditions(table, q, param))
        return f"SELECT {columns} FROM ({inner}) AS r{outer} ORDER BY {ordering} LIMIT {limit}", param.values

    def scan_extent(self, table: str, q: AuditQuery) -> tuple[str, list[Any]]:
        """How many rows the inner scan of `rows` examines, and its last seq in the query's order."""
        param = _Params(self.dialect)
        order, edge = ("ASC", "MAX") if q.oldest_first else ("DESC", "MIN")
        where = lambda: _where(_indexed_conditions(table, q, param))  # noqa: E731 - one placeholder per FROM item
        inner = self._top(table, where, _ordering(table, order), MAX_SCAN,
                          "seq" if table == "requests" else "seq, decision_id", f"seq {order}", q)
        return f"SELECT COUNT(*), {edge}(seq) FROM ({inner}) AS scanned", param.values

    def chain_page(self, table: str, after_seq: int, limit: int) -> tuple[str, list[Any]]:
        param = _Params(self.dialect)
        columns = ", ".join(f"t.{column}" for column in ("seq", *COLUMN_NAMES[table], "prev_hash", "hash"))
        return (
            f"SELECT {columns}, e.erasure_seq, e.mac FROM {table} t LEFT JOIN erased_rows e ON e.seq = t.seq "
            f"WHERE t.seq > {param(after_seq)} ORDER BY t.seq LIMIT {int(limit)}",
            param.values,
        )

    def sessions(self, q: AuditQuery) -> tuple[str, list[Any]]:
        """Sessions of the newest MAX_SCAN requests the indexed filters select (a bounded scan, as `rows`)."""
        param = _Params(self.dialect)
        inner = _where(["session_id <> ''", *_indexed_conditions("requests", q, param, paging=False)])
        outer = _where(_other_conditions("requests", q, param))
        agents = self.dialect.distinct_list.format(column="agent_id")
        sql = (
            f"SELECT session_id, tenant_id, {agents}, MIN(started_at), MAX(started_at), COUNT(*), "
            f"SUM(CASE WHEN {REQUEST_BLOCKED} THEN 1 ELSE 0 END), "
            "COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0) "
            f"FROM (SELECT {_columns('requests')} FROM requests{inner} ORDER BY seq DESC LIMIT {MAX_SCAN}) AS r"
            f"{outer} GROUP BY tenant_id, session_id "
            f"ORDER BY MAX(started_at) DESC, session_id LIMIT {q.capped_limit}"
        )
        return sql, param.values

    def timeline(self, table: str, session_id: str, limit: int) -> tuple[str, list[Any]]:
        param = _Params(self.dialect)
        time_column = TIME_COLUMN[table]
        where = lambda: f" WHERE session_id = {param(session_id)}"  # noqa: E731 - one placeholder per FROM item
        return self._top(table, where, f"{time_column} DESC, seq DESC", int(limit), _columns(table)), param.values

    def verdict_totals(self, since: float) -> tuple[str, list[Any]]:
        param = _Params(self.dialect)
        return (
            f"SELECT verdict, COUNT(*), SUM(CASE WHEN {REQUEST_BLOCKED} THEN 1 ELSE 0 END) FROM requests "
            f"WHERE started_at >= {param(since)} GROUP BY verdict",
            param.values,
        )

    def top_policies(self, since: float) -> tuple[str, list[Any]]:
        param = _Params(self.dialect)
        return (
            "SELECT policy, verdict, SUM(count) FROM decisions "
            f"WHERE recorded_at >= {param(since)} AND verdict <> 'ALLOW' "
            "GROUP BY policy, verdict ORDER BY SUM(count) DESC, policy, verdict LIMIT 10",
            param.values,
        )

    def top_tenants(self, since: float) -> tuple[str, list[Any]]:
        param = _Params(self.dialect)
        return (
            f"SELECT tenant_id, COUNT(*), SUM(CASE WHEN {REQUEST_BLOCKED} THEN 1 ELSE 0 END) FROM requests "
            f"WHERE started_at >= {param(since)} GROUP BY tenant_id ORDER BY COUNT(*) DESC, tenant_id LIMIT 10",
            param.values,
        )

    def latency(self, since: float, bucket_seconds: float) -> tuple[str, list[Any]]:
        """Nearest-rank percentiles per bucket: the value at rank ceil(p * n), as query.nearest_rank."""
        param = _Params(self.dialect)
        bucket = self.dialect.bucket_of.format(column="started_at", param=param(float(bucket_seconds)))
        picks = ", ".join(
            # ceil(p * n) in integers: (p% * n + 99) / 100.
            f"MAX(CASE WHEN rn = ({round(fraction * 100)} * n + 99) / 100 THEN latency_ms END)"
            for _, fraction in PERCENTILES
        )
        return (
            f"WITH bucketed AS (SELECT {bucket} AS bucket, latency_ms FROM requests "
            f"WHERE started_at >= {param(since)}), "
            "ranked AS (SELECT bucket, latency_ms, ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY latency_ms) AS rn, "
            "COUNT(*) OVER (PARTITION BY bucket) AS n FROM bucketed) "
            f"SELECT bucket, n, {picks} FROM ranked GROUP BY bucket, n ORDER BY bucket",
            param.values,
        )


def may_match_folded(q: AuditQuery) -> bool:
    """Whether a decision query can select folded decisions (folding.py): ALLOWs, never blocking, never
    shadow, with no details or subject."""
    return (q.verdict is None or "ALLOW" in q.verdict) and q.blocked is not True


def whole_groups(records: Sequence[T], limit: int, seq_of: Callable[[T], Any]) -> list[T]:
    """The first `limit` records, and those after them that share the last one's seq (decisions folded
    into one request row): a page never ends inside such a group, so a seq cursor misses none of it."""
    end = min(limit, len(records))
    if end and end < len(records):
        last_seq = seq_of(records[end - 1])
        while end < len(records) and seq_of(records[end]) == last_seq:
            end += 1
    return list(records[:end])


def session_dicts(records: list[Sequence[Any]], agents_of: Any) -> list[dict[str, Any]]:
    """Rows of the sessions statement as answers; `agents_of` turns the aggregate into a list."""
    return [
        {
            "session_id": session_id, "tenant_id": tenant_id,
            "agent_ids": sorted(agent for agent in agents_of(agents) if agent),
            "first_at": first_at, "last_at": last_at, "requests": int(requests), "blocked": int(blocked or 0),
            "input_tokens": int(input_tokens), "output_tokens": int(output_tokens),
        }
        for session_id, tenant_id, agents, first_at, last_at, requests, blocked, input_tokens, output_tokens in records
    ]


def merge_timeline(
    requests: list[Sequence[Any]], decisions: list[Sequence[Any]], limit: int
) -> list[dict[str, Any]]:
    """The latest `limit` requests and decisions of a session, in time order."""
    items = [{"type": "request", **to_dict("requests", record)} for record in requests]
    items += [{"type": "decision", **to_dict("decisions", record)} for record in decisions]
    items.sort(key=lambda item: (item["started_at"] if item["type"] == "request" else item["recorded_at"], item["seq"]))
    return items[-limit:] if limit > 0 else []


def summary_dict(
    verdicts: list[Sequence[Any]], policies: list[Sequence[Any]], tenants: list[Sequence[Any]],
    latency: list[Sequence[Any]], bucket_seconds: float,
) -> dict[str, Any]:
    """The answers of the summary statements as one summary."""
    return {
        "requests": sum(int(count) for _, count, _ in verdicts),
        "blocked": sum(int(blocked or 0) for _, _, blocked in verdicts),
        "by_verdict": {verdict: int(count) for verdict, count, _ in verdicts},
        "top_policies": [{"policy": p, "verdict": v, "count": int(n)} for p, v, n in policies],
        "top_tenants": [{"tenant_id": t, "requests": int(n), "blocked": int(b or 0)} for t, n, b in tenants],
        "latency": [
            {"t": float(int(bucket) * bucket_seconds), "count": int(count),
             **{name: value for (name, _), value in zip(PERCENTILES, values, strict=True)}}
            for bucket, count, *values in latency
        ],
    }


class SQLQueries:
    """The query methods of a SQL store, given how it runs statements (`_fetch_all`)."""

    statements: Statements

    async def _fetch_all(self, statements: list[tuple[str, list[Any]]]) -> list[list[Sequence[Any]]]:
        """The rows of each statement, read in one go."""
        raise NotImplementedError

    def _agent_list(self, aggregate: Any) -> list[str]:
        """The distinct agent ids aggregate as a list."""
        return list(aggregate or [])

    async def _fetch(self, statement: tuple[str, list[Any]]) -> list[Sequence[Any]]:
        return (await self._fetch_all([statement]))[0]

    async def query_requests(self, q: AuditQuery) -> list[dict[str, Any]]:
        return [to_dict("requests", record) for record in await self._fetch(self.statements.rows("requests", q))]

    async def query_decisions(self, q: AuditQuery) -> list[dict[str, Any]]:
        records = await self._fetch(self.statements.rows("decisions", q))
        return [to_dict("decisions", record) for record in whole_groups(records, q.capped_limit, itemgetter(0))]

    async def scan_extent(self, table: str, q: AuditQuery) -> tuple[int, int | None]:
        if not q.scanned(table):
            return 0, None
        [(count, edge)] = await self._fetch(self.statements.scan_extent(table, q))
        return int(count), None if edge is None else int(edge)

    async def query_sessions(self, q: AuditQuery) -> list[dict[str, Any]]:
        return session_dicts(await self._fetch(self.statements.sessions(q)), self._agent_list)

    async def session_timeline(self, session_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        limit = max(0, int(limit))
        requests, decisions = await self._fetch_all(
            [self.statements.timeline(table, session_id, limit) for table in ("requests", "decisions")]
        )
        return merge_timeline(requests, decisions, limit)

    async def summary(self, since: float, bucket_seconds: float = 60) -> dict[str, Any]:
        since = float(since)
        if bucket_seconds <= 0:
            raise ValueError("bucket_seconds must be positive")
        verdicts, policies, tenants, latency = await self._fetch_all([
            self.statements.verdict_totals(since), self.statements.top_policies(since),
            self.statements.top_tenants(since), self.statements.latency(since, bucket_seconds),
        ])
        return summary_dict(verdicts, policies, tenants, latency, bucket_seconds)

    async def chain_page(self, table: str, after_seq: int, limit: int) -> list[ChainRow]:
        """Rows of `table` after `after_seq`, in seq order, as stored (for verification)."""
        records = await self._fetch(self.statements.chain_page(table, after_seq, limit))
        return [chain_row(table, record) for record in records]

    async def chain_start(self) -> ChainStart | None:
        """Where the chain begins after a retention prune (None: at its genesis)."""
        records = await self._fetch(("SELECT seq, hash, pruned_at, mac FROM chain_start", []))
        if not records:
            return None
        seq, digest, pruned_at, mac = records[0]
        return ChainStart(int(seq), str(digest), float(pruned_at), str(mac))

    async def head(self) -> StoredHead | None:
        """The store's recorded head (None when its row is missing)."""
        records = await self._fetch(("SELECT seq, hash, keyed_from, key_id, store_id, mac FROM chain_head", []))
        if not records:
            return None
        seq, digest, keyed_from, key_id, store_id, mac = records[0]
        return StoredHead(int(seq), str(digest), int(keyed_from), str(key_id), str(store_id), str(mac))
