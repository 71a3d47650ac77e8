import os

from django.core.asgi import get_asgi_application

from memadmin.env import env_bool

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memadmin.settings")
application = get_asgi_application()

# As in wsgi.py: the embedder loads before the first request, not inside it (MEMADMIN_PRELOAD_EMBEDDER=0: at
# the first use).
if env_bool("MEMADMIN_PRELOAD_EMBEDDER", True):
    from memadmin.memory.embedders import warm_up

    warm_up()
