from django.urls import path

from hub.ui import home, users

urlpatterns = [
    path("", home.home, name="home"),
    path("users/", users.user_list, name="hub-users"),
    path("users/new/", users.user_add, name="hub-users-add"),
    path("users/<int:pk>/role/", users.user_role, name="hub-users-role"),
    path("users/<int:pk>/active/", users.user_active, name="hub-users-active"),
    path("users/<int:pk>/password/", users.user_password, name="hub-users-password"),
    path("users/<int:pk>/token/", users.user_token, name="hub-users-token"),
    path("users/<int:pk>/token/revoke/", users.user_token_revoke_view, name="hub-users-token-revoke"),
]
