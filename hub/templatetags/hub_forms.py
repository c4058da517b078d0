from django import template
from django.forms import BaseForm, BoundField

register = template.Library()


@register.filter
def fields(form: BaseForm, names: str) -> list[BoundField]:
    """The form's fields named in `names` (space-separated), in that order, to lay out in a loop.

    `{% for field in form|fields:"kind name slug" %}`; an unknown name raises, so a renamed field
    fails the page instead of silently dropping out of it.
    """
    return [form[name] for name in names.split()]
