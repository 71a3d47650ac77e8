"""Demo data: two tenants, two apps each, agents, ~10 end users, a few hundred memories with real embeddings."""

import random

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from memadmin.memory import selectors, services
from memadmin.memory.collections import app_consistency_check
from tenants.app_services import app_create
from tenants.entities import entities_touch
from tenants.models import App, Membership, Role, Tenant
from tenants.scoping import scope_for_membership

DEMO_PASSWORD = "memadmin-demo"

TENANTS = {
    "acme": {
        "name": "Acme Travel",
        "apps": {
            "concierge_app": ["travel_planner", "chef_recommender", "booking_assistant"],
            "sports_brand_portal": ["coach_bot", "gear_advisor"],
        },
        "users": [
            "traveler_cam",
            "u_alice",
            "u_bob",
            "exec_123",
            "athlete_jane",
            "coach_mike",
            "team_admin",
            "sarah_exec",
            "nora_ops",
            "li_wei",
        ],
    },
    "globex": {
        "name": "Globex Health",
        "apps": {
            "care_app": ["triage_bot", "pharmacy_helper"],
            "coach_app": ["fitness_coach", "sleep_coach"],
        },
        "users": [
            "u_alice",
            "patient_17",
            "patient_42",
            "dr_hale",
            "runner_ana",
            "u_omar",
            "u_priya",
            "u_kenji",
            "u_sofia",
            "u_tom",
        ],
    },
}

FACTS = [
    "I am vegetarian. Please remember that.",
    "I avoid shellfish and prefer boutique hotels.",
    "I always want a window seat on flights.",
    "I prefer aisle seats on long-haul flights.",
    "My favourite cuisine is Kyoto kaiseki.",
    "I'm allergic to peanuts and tree nuts.",
    "I need a hotel near the conference center.",
    "I run 10k every Saturday morning.",
    "I prefer morning workouts before 7am.",
    "I take vitamin D every day.",
    "I'm training for a half marathon in April.",
    "I sleep badly when the room is warm.",
    "I like dark mode and Python.",
    "I travel with a cat and need pet-friendly rooms.",
    "I prefer trains over short flights.",
    "My budget for hotels is 200 euros a night.",
    "I'm lactose intolerant.",
    "I like spicy food, especially Sichuan dishes.",
    "I want reminders by SMS, not email.",
    "I'm learning Japanese for my trip to Tokyo.",
    "I prefer quiet rooms on high floors.",
    "I use a standing desk and get back pain when sitting long.",
    "My preferred airline alliance is Star Alliance.",
    "I don't drink alcohol.",
    "I like to swim in the hotel pool in the evening.",
]


class Command(BaseCommand):
    help = "Create demo tenants, apps, staff logins and a few hundred memories (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--per-user", type=int, default=8, help="Memories per end user per app (default 8).")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, per_user=8, seed=7, **options):
        rng = random.Random(seed)
        logins = self._people()
        for slug, spec in TENANTS.items():
            tenant = Tenant.objects.get(slug=slug)
            admin = Membership.objects.get(tenant=tenant, role=Role.ADMIN)
            scope = scope_for_membership(admin)
            if selectors.memory_count(scope=scope) > 0:
                self.stdout.write(f"{spec['name']}: memories already seeded, skipping.")
                continue
            jobs = [
                (app_id, user_id, rng.choice(agents), f"{rng.choice(['session', 'ticket'])}-{rng.randint(1, 40)}")
                for app_id, agents in spec["apps"].items()
                for user_id in spec["users"]
                for _ in range(per_user)
            ]
            for app_id, user_id, agent_id, run_id in tqdm(jobs, desc=f"seeding {slug}", unit="mem"):
                metadata = {"source": "demo", "channel": rng.choice(["web", "ios", "android"])}
                records = services.memory_add(
                    scope=scope,
                    app_id=app_id,
                    messages=rng.choice(FACTS),
                    user_id=user_id,
                    agent_id=agent_id,
                    run_id=run_id,
                    metadata=metadata,
                )
                entities_touch(scope=scope, records=records)
            # One consistency pass per app, so the demo's index health shows a real count from the start.
            for app in tenant.apps.all():
                app_consistency_check(app=app.app_ref())
        self.stdout.write(
            self.style.SUCCESS(
                f"\nDemo ready at http://127.0.0.1:8000/  (password for every login below: {DEMO_PASSWORD})"
            )
        )
        for username, what in logins:
            self.stdout.write(f"  {username:<16} {what}")

    @transaction.atomic
    def _people(self):
        User = get_user_model()
        logins = []
        if not User.objects.filter(username="platform").exists():
            User.objects.create_superuser("platform", "platform@example.com", DEMO_PASSWORD)
        logins.append(("platform", "platform superuser (Django admin at /admin/)"))
        for slug, spec in TENANTS.items():
            tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": spec["name"]})
            for index, app_id in enumerate(spec["apps"]):
                if not App.objects.filter(tenant=tenant, app_id=app_id).exists():
                    app_create(
                        tenant=tenant, app_id=app_id, name=app_id.replace("_", " ").title(), is_default=index == 0
                    )
            for role in (Role.ADMIN, Role.SUPPORT, Role.VIEWER):
                username = f"{slug}-{role}"
                email = f"{username}@example.com"
                user, created = User.objects.get_or_create(username=username, defaults={"email": email})
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": role})
                logins.append((username, f"{role} of {spec['name']}"))
        return logins
