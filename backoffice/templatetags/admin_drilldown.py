"""The `{% date_drilldown cl %}` tag: Django's date hierarchy, from MIN and MAX only (backoffice.lists)."""

from django import template
from django.contrib.admin.templatetags.base import InclusionAdminNode

from backoffice.lists import date_drilldown

register = template.Library()


@register.tag(name="date_drilldown")
def date_drilldown_tag(parser: template.base.Parser, token: template.base.Token) -> InclusionAdminNode:
    return InclusionAdminNode(
        parser, token, func=date_drilldown, template_name="date_hierarchy.html", takes_context=False
    )
