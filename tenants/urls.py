from django.urls import path

from tenants import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
]
