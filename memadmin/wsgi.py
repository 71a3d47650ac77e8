import os

from django.core.wsgi import get_wsgi_application

from memadmin.middleware import keep_raw_path
from memadmin.wsgi_edge import edge

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memadmin.settings")
application = keep_raw_path(edge(get_wsgi_application()))

# runserver and gunicorn both import this module before they accept a request: the embedder loads here,
# not inside the first search. (The job worker never embeds, so it does not load it.)
# MEMADMIN_PRELOAD_EMBEDDER=0 leaves it to the first use (tests that start many workers).
from memadmin.env import env_bool  # noqa: E402

if env_bool("MEMADMIN_PRELOAD_EMBEDDER", True):
    from memadmin.memory.embedders import warm_up

    warm_up()
