from django import template

register = template.Library()


@register.filter
def thousands(value: int | None) -> str:
    """12345 as "12,345": counts of letters are read at a glance."""
    return f"{value or 0:,}"
