"""Long work as background jobs: offboard an app, erase a user, export an app or tenant, retention.

services.py creates, dedupes, cancels and dispatches Job rows; runners.py does the
work from a job's persisted cursor; tasks.py is the thin Celery layer around both.
"""
