"""Benchmarks of memadmin at scale (10k -> 1M memories), side by side with raw Valkey and Mem0.

Run ``python -m bench --help``. Nothing here is imported by the application.
"""
