from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()

CURRENT = mark_safe(' aria-current="page"')


@register.simple_tag(takes_context=True)
def nav_item(context, url_name: str, label: str, *, unless_under: str = "") -> str:
    """One entry of the main navigation, marked current on its page and on the pages below it.

    The URL is reversed here rather than taken from `{% url ... as var %}`, which turns a missing
    page into "" without a word: a renamed page must fail, not vanish from the navigation.
    `unless_under` hands the pages below another URL to that entry (the map lives under flows).
    """
    url = reverse(url_name)
    path = context["request"].path
    current = (path == url or (url != "/" and path.startswith(url))) and not (
        unless_under and path.startswith(reverse(unless_under))
    )
    return format_html('<li><a href="{}"{}>{}</a></li>', url, CURRENT if current else "", label)
