"""Erasures: every signed erasure receipt of the tenant (support and admin), filterable, each downloadable as
the JSON a third party verifies with the public key shown on the same page."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render

from memadmin.memory.receipts import KINDS, key_id, public_key_pem, receipt_document, receipt_get, receipt_list
from tenants.forms import ErasureFilterForm
from tenants.views.common import TenantRequest, is_fragment, tenant_view

PAGE_SIZE = 50


@tenant_view
def erasure_list(request: TenantRequest) -> HttpResponse:
    form = ErasureFilterForm(request.GET)
    template = "tenants/erasures.html#results" if is_fragment(request) else "tenants/erasures.html"
    context = {"form": form, "kinds": KINDS, "key_id": key_id(), "public_key_pem": public_key_pem()}
    if not form.is_valid():
        return render(request, template, context, status=400)
    receipts = form.apply(receipt_list(scope=request.scope))
    context["page"] = Paginator(receipts, PAGE_SIZE).get_page(form.cleaned_data.get("page") or 1)
    return render(request, template, context)


@tenant_view
def erasure_receipt(request: TenantRequest, receipt_id) -> HttpResponse:
    receipt = receipt_get(scope=request.scope, receipt_id=receipt_id)
    return receipt_download(receipt)


def receipt_download(receipt) -> HttpResponse:
    """The signed document as a file; the dashboard's and the your-data page's download."""
    response = HttpResponse(
        json.dumps(receipt_document(receipt), indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="erasure-receipt-{receipt.pk}.json"'
    return response


@tenant_view
def erasure_public_key(request: TenantRequest) -> HttpResponse:
    response = HttpResponse(public_key_pem(), content_type="application/x-pem-file")
    response["Content-Disposition"] = 'attachment; filename="memadmin-receipts-public-key.pem"'
    return response
