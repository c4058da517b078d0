from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_link(context, url_name: str, label: str) -> str:
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return ""
    request = context.get("request")
    current = request is not None and request.path.startswith(url) and url != "/"
    return format_html(
        '<li><a href="{}"{}>{}</a></li>', url, ' aria-current="page"' if current else "", label
    )
