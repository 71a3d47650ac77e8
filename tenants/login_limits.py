"""django-axes failure limit with two thresholds: per username+IP (low) and per IP (higher).

axes counts failures for every combination in AXES_LOCKOUT_PARAMETERS but compares
the largest count with ONE limit. With the pair at 5 and the address alone at 5 too,
an office behind one NAT would be locked out by five typos of five colleagues; so
the limit is the pair's while this username+IP has reached it, else the address's.
"""

from __future__ import annotations

from axes.attempts import get_cool_off_threshold
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum


def failure_limit(request, credentials) -> int:
    per_user = settings.AXES_FAILURE_LIMIT_PER_USER
    attempts = AccessAttempt.objects.filter(
        username=get_client_username(request, credentials),
        ip_address=getattr(request, "axes_ip_address", None),
        attempt_time__gte=get_cool_off_threshold(request),
    )
    pair_failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
    return per_user if pair_failures >= per_user else settings.MEMADMIN_LOGIN_IP_FAILURE_LIMIT
