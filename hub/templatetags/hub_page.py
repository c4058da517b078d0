from django import template
from django.template import NodeList
from django.template.loader_tags import BlockNode
from django.templatetags.static import static
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def block_text(context, name: str) -> str:
    """What the page puts in block `name`, so that one block can default to another.

    base.html shows the title again as the page's heading: a page whose heading is its title
    states it once. Rendering a fresh BlockNode of that name takes the page's override from the
    block context, exactly as Django does where the block itself stands.
    """
    return BlockNode(name, NodeList()).render(context)


@register.filter
def stylesheet_link(path: str) -> str:
    """A page's own stylesheet (a static path such as "hub/flows.css") as a <link>; none if empty."""
    path = path.strip()
    return format_html('<link rel="stylesheet" href="{}">', static(path)) if path else ""
