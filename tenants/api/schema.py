"""drf-spectacular's AutoSchema, plus request bodies on DELETE.

Mem0's batch_delete sends ``DELETE /v1/batch/`` with a JSON body; spectacular
documents bodies only for POST/PUT/PATCH, which would hide the one thing the
endpoint needs. A DELETE operation declaring ``request=`` gets its body.
"""

from drf_spectacular import openapi


class AutoSchema(openapi.AutoSchema):
    def _get_request_body(self, direction="request"):
        if self.method != "DELETE":
            return super()._get_request_body(direction)
        serializer = self.get_request_serializer()
        if serializer is None:
            return None
        self.get_request_serializer = lambda: serializer  # resolved under DELETE, where extend_schema applies
        self.method = "PUT"
        try:
            return super()._get_request_body(direction)
        finally:
            self.method = "DELETE"
            del self.get_request_serializer
