from django.urls import path

from hub.ui import home

urlpatterns = [
    path("", home.home, name="home"),
]
