"""What the database can and cannot do for the app: hold text, count big tables cheaply, build indexes live.

Index builds: a plain CREATE INDEX blocks every INSERT and UPDATE of the table while it builds (every
checkout and webhook of a big shop, for minutes); CONCURRENTLY does not, but cannot run in a transaction,
so a migration using these operations sets `atomic = False`. A build that failed half way leaves an
INVALID index, dropped and built again on the next run. SQLite gets the plain statements.
"""

import logging
import re
from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.migrations.operations import AddIndex, RemoveIndex
from django.db.models import QuerySet, sql

logger = logging.getLogger(__name__)

# NUL and the UTF-16 surrogates, which cannot be encoded in UTF-8 on their own: JSON allows both (as
# \u0000 and \ud800), Python strings hold both, and a PostgreSQL text column takes neither.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_is_storable(value: str) -> bool:
    """Return whether a text column can hold the value as it is, on every database this project runs on."""
    return _UNSTORABLE.search(value) is None


def storable_text(value: str, *, max_length: int | None = None, field: str = "") -> str:
    """Return the value without what no text column can hold, cut to `max_length`; log what was lost.

    For text that Stripe sends and that only informs a person (a reason, an API version): storing less
    of it is better than failing the write it comes with.
    """
    cleaned = _UNSTORABLE.sub("", value)
    if max_length is not None and len(cleaned) > max_length:
        cleaned = cleaned[:max_length]
    if cleaned != value:
        logger.warning("%s stored shortened to fit its column: %r", field or "text", value[:80])
    return cleaned


# Up to this many rows a list shows its exact count; above it, PostgreSQL's planner estimate, as "about".
EXACT_COUNT_LIMIT = 10_000


def update_returning(queryset: QuerySet, values: dict[str, Any], returning: str) -> list[Any]:
    """Run `queryset.update(**values)` and return one column of the rows it updated, in one statement.

    Django's update() says only how many rows changed; a caller that must know what it changed (the
    status a transition moved an order from) would read the row again. PostgreSQL and SQLite (3.35+)
    both answer UPDATE ... RETURNING.
    """
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    statement, params = query.get_compiler(queryset.db).as_sql()
    connection = connections[queryset.db]
    column = connection.ops.quote_name(queryset.model._meta.get_field(returning).column)
    with connection.cursor() as cursor:
        cursor.execute(f"{statement} RETURNING {column}", params)
        return [row[0] for row in cursor.fetchall()]


def planner_estimate(queryset: QuerySet) -> int | None:
    """Return PostgreSQL's estimate of the queryset's row count, or None on another database."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.order_by().query.sql_with_params()
    except EmptyResultSet:  # queryset.none(): nothing to ask the planner about
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    return int(plan[0]["Plan"]["Plan Rows"])


def capped_count(queryset: QuerySet) -> tuple[int, bool]:
    """Return (count, is_estimate): exact up to EXACT_COUNT_LIMIT, PostgreSQL's planner estimate above.

    The exact count is bounded by a LIMIT, so it never reads more than EXACT_COUNT_LIMIT + 1 rows; an
    estimate costs one EXPLAIN, and is never below what the bounded count saw (statistics may predate the
    latest rows). Where there is no planner to ask (SQLite, a small shop's database) it counts exactly.
    """
    estimate = planner_estimate(queryset)
    if estimate is None:
        return queryset.order_by().count(), False
    if estimate <= EXACT_COUNT_LIMIT:
        exact = queryset.order_by()[: EXACT_COUNT_LIMIT + 1].count()
        if exact <= EXACT_COUNT_LIMIT:
            return exact, False
        estimate = max(estimate, exact)
    return estimate, True


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL; CREATE INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)
            return
        self._ensure_not_in_transaction(schema_editor)
        model = to_state.apps.get_model(app_label, self.model_name)
        # A build that failed before leaves an INVALID index of this name: drop it, then build.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{self.index.name}"')
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
            return
        super().database_backwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrentlyOnPostgres(RemoveIndexConcurrently):
    """DROP INDEX CONCURRENTLY on PostgreSQL; DROP INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            RemoveIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)
            return
        super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if schema_editor.connection.vendor != "postgresql":
            RemoveIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
            return
        super().database_backwards(app_label, schema_editor, from_state, to_state)
