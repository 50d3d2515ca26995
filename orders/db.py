"""What the database can and cannot do for the app: hold text, count big tables cheaply, index live."""

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

    For text from Stripe that only informs a person (a reason): storing less beats failing the write.
    """
    cleaned = _UNSTORABLE.sub("", value)[:max_length]
    if cleaned != value:
        logger.warning("%s stored shortened to fit its column: %r", field or "text", value[:80])
    return cleaned


# Up to this many rows a list shows its exact count; above it, PostgreSQL's planner estimate, as "about".
EXACT_COUNT_LIMIT = 10_000


def update_returning(queryset: QuerySet, values: dict[str, Any], returning: str) -> list[Any]:
    """Run `queryset.update(**values)` and return one column of the rows it updated, in one statement
    (UPDATE ... RETURNING: PostgreSQL, SQLite 3.35+), where Django's says only how many."""
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    statement, params = query.get_compiler(queryset.db).as_sql()
    connection = connections[queryset.db]
    column = connection.ops.quote_name(queryset.model._meta.get_field(returning).column)
    with connection.cursor() as cursor:
        cursor.execute(f"{statement} RETURNING {column}", params)
        return [row[0] for row in cursor.fetchall()]


def capped_count(queryset: QuerySet) -> tuple[int, bool]:
    """Return (count, is_estimate): exact up to EXACT_COUNT_LIMIT, PostgreSQL's planner estimate above.

    The exact count reads at most EXACT_COUNT_LIMIT + 1 rows; an estimate is never below what it saw
    (statistics may predate the latest rows). Without a planner (SQLite) it counts exactly.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return queryset.order_by().count(), False
    try:
        sql, params = queryset.order_by().query.sql_with_params()
    except EmptyResultSet:  # queryset.none(): nothing to ask the planner about
        return 0, False
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        estimate = int(cursor.fetchone()[0][0]["Plan"]["Plan Rows"])
    if estimate <= EXACT_COUNT_LIMIT:
        exact = queryset.order_by()[: EXACT_COUNT_LIMIT + 1].count()
        if exact <= EXACT_COUNT_LIMIT:
            return exact, False
        estimate = max(estimate, exact)
    return estimate, True


# A plain CREATE INDEX blocks every write of the table while it builds; CONCURRENTLY does not, but cannot
# run in a transaction, so a migration using these operations sets `atomic = False`.
class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    """CREATE INDEX CONCURRENTLY on PostgreSQL; CREATE INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _postgres(schema_editor):
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
        operation = AddIndexConcurrently if _postgres(schema_editor) else AddIndex
        operation.database_backwards(self, app_label, schema_editor, from_state, to_state)


class RemoveIndexConcurrentlyOnPostgres(RemoveIndexConcurrently):
    """DROP INDEX CONCURRENTLY on PostgreSQL; DROP INDEX elsewhere."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        operation = RemoveIndexConcurrently if _postgres(schema_editor) else RemoveIndex
        operation.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        operation = RemoveIndexConcurrently if _postgres(schema_editor) else RemoveIndex
        operation.database_backwards(self, app_label, schema_editor, from_state, to_state)


def _postgres(schema_editor) -> bool:
    return schema_editor.connection.vendor == "postgresql"
