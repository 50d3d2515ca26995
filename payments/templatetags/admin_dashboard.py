"""The `{% admin_dashboard %}` tag: the admin index's Needs attention counts and its small dashboard."""

from django import template

from payments.admin_attention import dashboard_context

register = template.Library()


@register.inclusion_tag("admin/dashboard.html", takes_context=True)
def admin_dashboard(context: template.Context) -> dict:
    """Render the dashboard for the user looking at the index (nothing for one who may not view orders)."""
    return dashboard_context(context["request"].user)
