"""What every admin list here needs at a million rows: cheap counts, index-backed drill-downs and filters.

Shared by the orders and the payments admins (payments may import orders; orders never imports payments).
"""

from __future__ import annotations

from functools import cached_property

from django.contrib import admin
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest

from orders.db import EXACT_COUNT_LIMIT, capped_count

# From this offset on a page first reads only the primary keys (an index-only scan), then those rows.
DEFERRED_JOIN_OFFSET = 10_000


def count_display(count: int, *, is_estimate: bool) -> str:
    """Return a count as the admin shows it: 1,234 when exact, "about 800,000" when an estimate."""
    if not is_estimate:
        return f"{count:,}"
    # Two significant figures: the estimate is no more precise than that.
    rounded = round(count, -max(len(str(count)) - 2, 0))
    return f"about {max(rounded, EXACT_COUNT_LIMIT):,}"


class EstimatedCountPaginator(Paginator):
    """A paginator that never counts a big list: an exact count up to EXACT_COUNT_LIMIT, an estimate above.

    A COUNT(*) over a million rows costs more than the rest of the page; "about 800,000" is what an
    operator needs. A count that is an estimate says so through `count_is_estimate` and `count_display`.
    """

    count_is_estimate = False

    @cached_property
    def count(self) -> int:
        if not isinstance(self.object_list, QuerySet):
            return len(self.object_list)
        count, self.count_is_estimate = capped_count(self.object_list)
        return count

    @property
    def count_display(self) -> str:
        return count_display(self.count, is_estimate=self.count_is_estimate)

    def page(self, number: int | str) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        if bottom < DEFERRED_JOIN_OFFSET or not isinstance(self.object_list, QuerySet):
            return super().page(number)
        # OFFSET must walk every skipped row; walking only the keys of the ordering's index is far cheaper.
        keys = list(self.object_list.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        return self._get_page(self.object_list.filter(pk__in=keys), number, self)


class DistinctValuesFilter(admin.SimpleListFilter):
    """List a column's distinct values by walking its index (a loose index scan), not by scanning the table.

    Django's default for a plain column runs SELECT DISTINCT over the table. This asks the index for the
    smallest value, then the smallest one above it, and so on: one index probe per distinct value.
    Subclass with `title`, `parameter_name` (the column) and, optionally, `max_values`.
    """

    max_values = 200

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        model = model_admin.model
        connection = connections[model_admin.get_queryset(request).db]
        quote = connection.ops.quote_name
        table, column = quote(model._meta.db_table), quote(model._meta.get_field(self.parameter_name).column)
        sql = (
            f"WITH RECURSIVE walk(value, n) AS ("
            f" SELECT MIN({column}), 1 FROM {table}"
            f" UNION ALL"
            f" SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > walk.value), n + 1"
            f" FROM walk WHERE walk.value IS NOT NULL AND n < %s"
            f") SELECT value FROM walk WHERE value IS NOT NULL"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.max_values])
            return [(value, value) for (value,) in cursor.fetchall()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value else queryset


class ReadOnlyAdminMixin:
    """A record that is only ever looked at: no add, no delete, no Save button, and no "changed" message.

    Staff with the view permission see the page; a POST to it is refused, so nothing claims a change that
    never happened. Admin actions keep their own permissions.
    """

    def has_add_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object | None = None) -> bool:
        return False


class ScaledListMixin:
    """The list settings that keep a changelist cheap on a big table; pair with a date drill-down."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # "Show all" lists every row on one page: offered up to this many (an estimate is always far above).
    list_max_show_all = 200
    change_list_template = "admin/scaled_change_list.html"
