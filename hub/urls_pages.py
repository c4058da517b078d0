from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path(
        "accounts/login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("hub.ui.urls_home")),
    path("systems/", include("hub.ui.urls_systems")),
    path("models/", include("hub.ui.urls_models")),
    path("flows/", include("hub.ui.urls_flows")),
    path("dead-letters/", include("dlq.urls")),
]
