from tests.support.hostile import hostile_world, staff_client  # noqa: F401  (the hostile suite's fixtures)
