"""Erasure receipts over the API: the signed document of one erasure in the key's scope, and the public key
that verifies it (public: a third party checks a receipt without any key of ours)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes, throttle_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from memadmin.memory.receipts import ALGORITHM, key_id, public_key_pem, receipt_document, receipt_get
from tenants.api import serializers as s
from tenants.api.auth import request_scope
from tenants.api.views.common import ERRORS


@extend_schema(
    operation_id="receipt_get",
    summary="The signed receipt of one erasure (a deletion answer's receipt_url names it)",
    description="The document {receipt, signature, purge}: verify it with the public key "
    "(GET /v1/receipts/public-key/, docs/receipts.md). A receipt outside the key's scope is 404.",
    parameters=[OpenApiParameter("receipt_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    responses={200: s.ReceiptDocumentSerializer, **ERRORS},
)
@api_view(["GET"])
def receipt_detail(request, receipt_id) -> Response:
    return Response(receipt_document(receipt_get(scope=request_scope(request), receipt_id=receipt_id)))


@extend_schema(
    operation_id="receipt_public_key",
    summary="The Ed25519 public key that signs this installation's erasure receipts (no key needed)",
    responses={200: s.ReceiptPublicKeySerializer},
    auth=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
@throttle_classes([])
def receipt_public_key(request) -> Response:
    return Response({"algorithm": ALGORITHM, "key_id": key_id(), "public_key_pem": public_key_pem()})
