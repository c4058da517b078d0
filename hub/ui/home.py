from django.shortcuts import render

from hub.access import readers


@readers
def home(request):
    return render(request, "hub/home.html")
