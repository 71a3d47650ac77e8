from tests.support.jobs import acme_valkey, job_files, load, world  # noqa: F401  (the job tests' fixtures)
from tests.support.worker import worker  # noqa: F401  (a real worker process)
