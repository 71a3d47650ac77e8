"""tenants/templatetags/ui.py: one way to show a time (relative, the exact time with its zone on hover)."""

from datetime import UTC, datetime, timedelta

from django.template import Context, Template
from django.utils import timezone


def render(source: str, **context) -> str:
    return Template("{% load ui %}" + source).render(Context(context))


def test_a_time_is_relative_with_the_exact_time_and_zone_on_hover(settings):
    moment = timezone.now() - timedelta(hours=3, minutes=5)
    html = render("{% when t %}", t=moment)
    assert html.startswith("<time datetime=") and ">3\xa0hours ago</time>" in html
    assert f'title="{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"' in html


def test_future_iso_strings_naive_values_and_nothing():
    soon = (timezone.now() + timedelta(days=6, hours=1)).isoformat()
    assert ">in 6\xa0days</time>" in render("{% when t %}", t=soon)
    assert "2026-01-02 03:04:05 UTC" in render("{% when t exact=True %}", t=datetime(2026, 1, 2, 3, 4, 5))
    assert render("{% when t %}", t=None) == '<span class="muted">—</span>'
    assert render("{% when t %}", t="not a time") == '<span class="muted">—</span>'
    assert render("{% when t %}", t=timezone.now()).endswith(">just now</time>")


def test_a_time_ahead_is_rounded_not_cut_short():
    """A 7-day link read a second after it was issued said "in 6 days"."""
    now = timezone.now()
    cases = [
        (timedelta(days=7) - timedelta(seconds=2), "7\xa0days"),
        (timedelta(minutes=89), "1\xa0hour"),
        (timedelta(minutes=91), "2\xa0hours"),
        (timedelta(hours=47), "47\xa0hours"),
        (timedelta(minutes=4, seconds=40), "5\xa0minutes"),
        (timedelta(days=30), "30\xa0days"),
    ]
    for ahead, words in cases:
        assert render("{% when t %}", t=now + ahead).endswith(f">in {words}</time>"), (ahead, words)


def test_another_display_zone_is_named(settings):
    settings.TIME_ZONE = "Europe/Paris"
    with timezone.override("Europe/Paris"):
        html = render("{% when t exact=True %}", t=datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    assert "2026-07-01 14:00:00 CEST" in html


def test_copy_buttons_and_plain_words():
    html = render('{% copy v "user id" %}', v='a"b')
    assert 'data-copy-text="a&quot;b"' in html and 'aria-label="Copy user id a&quot;b"' in html
    assert render("{{ v|plain }}", v="travel_planner") == "Travel planner"
