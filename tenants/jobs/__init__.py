"""Long work as background jobs: offboard an app, erase a user, export an app or tenant, retention.

models.py holds the Job row; services.py creates, dedupes, cancels and enqueues Job rows (by task name);
runners.py does the work from a job's persisted cursor, one module per kind in kinds/ registered in its RUNNERS
table (kinds/offboard.py names the offboarding's steps) under the lease of run.py; sweep.py is the
periodic sweep; tasks.py holds the thin Celery tasks around runners and sweep.
"""
