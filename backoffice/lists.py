"""What every admin list needs at a million rows: counts exact up to EXACT_COUNT_LIMIT and estimated above,
searches routed by their shape to an index (never LIKE '%...%'), a date drill-down from MIN and MAX (never
SELECT DISTINCT), and a column's distinct values walked through its index."""

import calendar
import datetime
from functools import cached_property

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest
from django.utils import formats, timezone
from django.utils.text import capfirst

from orders.db import EXACT_COUNT_LIMIT, capped_count
from orders.selectors import order_id_condition

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
    """A paginator that never counts a big list: exact up to EXACT_COUNT_LIMIT, an estimate above it."""

    count_is_estimate = False

    @cached_property
    def count(self) -> int:
        count, self.count_is_estimate = capped_count(self.object_list)
        return count

    @property
    def count_display(self) -> str:
        return count_display(self.count, is_estimate=self.count_is_estimate)

    def page(self, number: int | str) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        if bottom < DEFERRED_JOIN_OFFSET:
            return super().page(number)
        # OFFSET must walk every skipped row; walking only the keys of the ordering's index is far cheaper.
        keys = list(self.object_list.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        return self._get_page(self.object_list.filter(pk__in=keys), number, self)


class DistinctValuesFilter(admin.SimpleListFilter):
    """A filter on the column `parameter_name`: its values walked through its index, one probe per value."""

    max_values = 200

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        opts = model_admin.model._meta
        connection = connections[model_admin.get_queryset(request).db]
        quote = connection.ops.quote_name
        table, column = quote(opts.db_table), quote(opts.get_field(self.parameter_name).column)
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


def search_by_shape(queryset: QuerySet, term: str, routes: dict[str, str], *, order: str = "pk") -> QuerySet:
    """Return the rows the term names: `routes` maps a prefix (`cs_`, `evt_`) or "@" (an e-mail, any case) to
    the field it matches exactly; any other term is an order id or its prefix on `order`; else nothing."""
    term = term.strip()
    if not term:
        return queryset
    for shape, field in routes.items():
        if shape == "@" and "@" in term:
            return queryset.filter(**{f"{field}__iexact": term})
        if shape != "@" and term.startswith(shape):
            return queryset.filter(**{field: term})
    condition = order_id_condition(term, field=order)
    return queryset.filter(condition) if condition is not None else queryset.none()


def date_drilldown(cl: ChangeList) -> dict:
    """Return admin/date_hierarchy.html's context from MIN and MAX, not Django's SELECT DISTINCT: every period
    between the list's first and last date, a period with no rows too (it lists none)."""
    field = cl.date_hierarchy
    names = [f"{field}__{part}" for part in ("year", "month", "day")]
    year, month, day = (cl.params.get(name) for name in names)

    def choice(title: str, *parts: int) -> dict:
        link = cl.get_query_string(dict(zip(names, parts, strict=False)), [f"{field}__"])
        return {"link": link, "title": title}

    def named(date: datetime.date, fmt: str) -> str:
        return capfirst(formats.date_format(date, fmt))

    if year and month and day:
        date = datetime.date(int(year), int(month), int(day))
        back = choice(named(date, "YEAR_MONTH_FORMAT"), date.year, date.month)
        return {"show": True, "back": back, "choices": [{"title": named(date, "MONTH_DAY_FORMAT")}]}
    found = cl.queryset.aggregate(first=Min(field), last=Max(field))
    if not (found["first"] and found["last"]):
        return {"show": False}
    first, last = timezone.localtime(found["first"]), timezone.localtime(found["last"])
    if not year and first.year == last.year:
        year = first.year
        month = month or (first.month if first.month == last.month else None)
    if year and month:
        year, month = int(year), int(month)
        start = first.day if (first.year, first.month) == (year, month) else 1
        end = last.day if (last.year, last.month) == (year, month) else calendar.monthrange(year, month)[1]
        days = [datetime.date(year, month, d) for d in range(start, end + 1)]
        choices = [choice(named(d, "MONTH_DAY_FORMAT"), year, month, d.day) for d in days]
        return {"show": True, "back": choice(str(year), year), "choices": choices}
    if year:
        year = int(year)
        start, end = first.month if first.year == year else 1, last.month if last.year == year else 12
        months = [datetime.date(year, m, 1) for m in range(start, end + 1)]
        choices = [choice(named(date, "YEAR_MONTH_FORMAT"), year, date.month) for date in months]
        return {"show": True, "back": choice("All dates"), "choices": choices}
    years = range(first.year, last.year + 1)
    return {"show": True, "back": None, "choices": [choice(str(y), y) for y in years]}
