"""python manage.py embedder: the one embedder process that the web workers of ``serve`` share.

gunicorn's master starts it (memadmin/gunicorn_conf.py) with the socket path and a per-start key in its
environment; it is not meant to be run by hand, except to look at it (``--socket`` and a key).
"""

import os
import signal

from django.core.management.base import BaseCommand, CommandError

from memadmin.memory import embedders, store
from memadmin.memory.embedding import CoalescingEmbedder, EmbedderService


class Command(BaseCommand):
    help = (
        "Serve embeddings to this machine's web workers over a Unix socket (started by serve's gunicorn; "
        "MEMADMIN_EMBEDDER_PROCESS=0 turns it off)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--socket",
            default=os.environ.get(embedders.EMBEDDER_SOCKET_ENV),
            help=f"Unix socket path (default ${embedders.EMBEDDER_SOCKET_ENV}).",
        )

    def handle(self, *args, socket=None, **options):
        key = os.environ.get(embedders.EMBEDDER_KEY_ENV, "")
        if not socket or not key:
            raise CommandError(f"Needs a socket path and ${embedders.EMBEDDER_KEY_ENV} (hex): serve sets both.")
        try:
            authkey = bytes.fromhex(key)
        except ValueError:
            raise CommandError(f"${embedders.EMBEDDER_KEY_ENV} must be hex.") from None
        # This process is the embedder: nothing in it may take itself for a worker and call the socket.
        os.environ.pop(embedders.EMBEDDER_SOCKET_ENV, None)
        os.environ.pop(embedders.EMBEDDER_KEY_ENV, None)
        model = embedders.local_embedder()
        if not isinstance(model, CoalescingEmbedder):
            raise CommandError("The configured embedder is a hosted one: there is no local model to share.")
        model.embed("warm-up", "search")  # the first pass through the model is the slow one
        service = EmbedderService(model, socket, authkey, logger=store.logger)
        service.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: service.stop())
        self.stdout.write(f"Embedder process (pid {os.getpid()}) on {socket}", ending="\n")
        self.stdout.flush()
        service.serve_forever()
