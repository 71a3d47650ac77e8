"""One module per kind of job, each a function of a Run; tenants/jobs/runners.py registers them in one table
(RUNNERS) and runs them."""
