"""Long work as background jobs: offboard an app, erase a user, export an app or tenant, retention.

services.py creates, dedupes, cancels and enqueues Job rows (by task name); runners.py does the
work from a job's persisted cursor (offboarding: runners._offboard names its steps); sweep.py is the
periodic sweep; tasks.py holds the thin Celery tasks around runners and sweep.
"""
