"""The 403 answer for pages: which role the page needs and which one the user has, as a whole
page or, for an HTMX request, a short notice the page shows without losing its place."""

from django.shortcuts import render

DEFAULT_MESSAGE = "Your role does not allow this."


def permission_denied(request, exception=None):
    message = str(exception or "") or DEFAULT_MESSAGE
    if getattr(request, "htmx", False):
        response = render(request, "403.html#denied-toast", {"message": message}, status=403)
        # Added to the page's notices (static/hub/toasts.js lets htmx swap this 403 in).
        response["HX-Retarget"] = "#toasts"
        response["HX-Reswap"] = "beforeend"
        return response
    return render(request, "403.html", {"message": message}, status=403)
