"""Webhooks: a tenant's events POSTed, signed, to URLs it chose.

models.py holds the webhooks and their delivery log; targets.py is where a URL may point (the SSRF rules);
events.py turns the memory service's audit rows into deliveries (an outbox in the same transaction); delivery.py
sends them through the job queue with retries, back-off and auto-disable; services.py is what admins and API keys
do with webhooks.
"""
