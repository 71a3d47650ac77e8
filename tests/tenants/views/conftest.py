from tests.support.dashboard import add, memories, support, world  # noqa: F401  (the dashboard tests' fixtures)
