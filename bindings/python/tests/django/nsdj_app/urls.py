from django.urls import path

from . import views

urlpatterns = [path("mine/", views.user_cache_view)]
