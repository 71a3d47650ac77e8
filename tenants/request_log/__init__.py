"""The API request log: one row per API request made with a tenant's key (who, what path, how it ended, how
long it took), kept MEMADMIN_REQUEST_LOG_DAYS days. Never a body, a header or a query-string value."""
