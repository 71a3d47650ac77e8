import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memadmin.settings")
application = get_asgi_application()

# As in wsgi.py: the embedder loads before the first request, not inside it.
from memadmin.memory.store import warm_up  # noqa: E402

warm_up()
