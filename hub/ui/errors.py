"""The 403 answer for pages: which role the page needs and which one the user has, as a whole
page or, for an HTMX request, a short notice the page shows without losing its place."""

from django.shortcuts import render

from hub.roles import ROLE_LABELS, ROLES

DEFAULT_MESSAGE = "Your role does not allow this."


def role_rows(*, needed: list[str], held: list[str]) -> list[dict]:
    """Every role with what it may do, marked where this page needs it and where the user has it."""
    return [
        {
            "label": ROLE_LABELS[role],
            "does": ROLES[role].split(": ", 1)[1].capitalize(),
            "needed": role in needed,
            "held": role in held,
        }
        for role in ROLES
    ]


def permission_denied(request, exception=None):
    message = str(exception or "") or DEFAULT_MESSAGE
    if getattr(request, "htmx", False):
        response = render(request, "403.html#denied-toast", {"message": message}, status=403)
        # Added to the page's notices (static/hub/toasts.js lets htmx swap this 403 in).
        response["HX-Retarget"] = "#toasts"
        response["HX-Reswap"] = "beforeend"
        return response
    needed, held = getattr(exception, "needed", []), getattr(exception, "held", [])
    context = {"message": message, "roles": role_rows(needed=needed, held=held), "needed": needed}
    return render(request, "403.html", context, status=403)
