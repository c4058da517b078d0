"""The overview page."""

from django.shortcuts import render

from hub.access import readers
from hub.selectors.drift import held_by_system
from hub.selectors.overview import overview


@readers
def home(request):
    context = {**overview(), "drift_held": held_by_system()}
    if request.htmx:
        return render(request, "hub/home.html#stats", context)
    return render(request, "hub/home.html", context)
