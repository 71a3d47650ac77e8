"""manage.py verify_receipt FILE [--public-key FILE]: check a downloaded erasure receipt's signatures offline."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management.base import BaseCommand, CommandError

from memadmin.memory.receipts import ReceiptInvalid, key_id, receipt_verify


class Command(BaseCommand):
    help = (
        "Verify a downloaded erasure receipt (JSON) against this installation's public key, or the PEM given "
        "with --public-key (as GET /v1/receipts/public-key/ publishes it). Exit status 1 when invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--public-key", help="PEM file of the Ed25519 public key (default: this installation's)")

    def handle(self, *args, **options):
        public_key = None
        if options["public_key"]:
            try:
                public_key = serialization.load_pem_public_key(Path(options["public_key"]).read_bytes())
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the public key {options['public_key']}: {exc}") from None
            if not isinstance(public_key, Ed25519PublicKey):
                raise CommandError(f"{options['public_key']} is not an Ed25519 public key.")
        try:
            document = json.loads(Path(options["file"]).read_bytes().decode("utf-8"))
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from None
        except ValueError as exc:
            raise CommandError(f"INVALID: {options['file']} is not JSON (UTF-8) any more: {exc}") from None
        try:
            body = receipt_verify(document, public_key)
        except ReceiptInvalid as exc:
            raise CommandError(f"INVALID: {exc}") from None
        purge = document.get("purge")
        purged = (
            f"purged from disk at {purge['attestation']['purged_at']}"
            if purge
            else (f"on disk until at most {body.get('purge_due_at')} (no purge attestation yet)")
        )
        self.stdout.write(
            f"valid: receipt {body.get('id')} ({body.get('kind')}, {body.get('created_at')}), signed by "
            f"key {key_id(public_key) if public_key else key_id()}; {purged}."
        )
