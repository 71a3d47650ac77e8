import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memadmin.settings")
application = get_wsgi_application()

# runserver and gunicorn both import this module before they accept a request: the embedder loads here,
# not inside the first search. (The job worker never embeds, so it does not load it.)
from memadmin.memory.store import warm_up  # noqa: E402

warm_up()
