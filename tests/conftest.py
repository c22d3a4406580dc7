"""Shared fixtures: two organizations created once per test session (cloned, not migrated)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.core.cache import caches
from django.db import connection, connections
from pytest_django.plugin import blocking_manager_key

from aura.workflows.organizations import open_organization
from billing.actions import do_seed_catalog
from billing.models import Plan, PlanPeriod, Subscription
from tenants.actions import NewOrganization, do_ensure_platform_organization
from tenants.models import Organization, WidgetKey
from tests import seeds

PASSWORD = "correct-horse-battery-1"


@dataclass(frozen=True)
class SeededTenant:
    organization: Organization
    admin_email: str
    host: str

    @property
    def origin(self) -> str:
        """The origin the seeded widget key allows (the tenant's own host)."""
        return f"http://{self.host}:8000"

    @property
    def widget_key(self) -> WidgetKey:
        return WidgetKey.objects.filter(organization=self.organization).order_by("pk").first()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker) -> Iterator[None]:
    """The stock set-up runs migrate_schemas (public, template); then the platform and two tenants."""
    with django_db_blocker.unblock():
        do_ensure_platform_organization()
        do_seed_catalog()  # what setup_platform adds: list prices and plans (new organizations start a trial)
        for slug in ("alpha", "beta"):
            open_organization(
                NewOrganization(
                    name=slug.title(), slug=slug, admin_email=f"admin@{slug}.example", admin_password=PASSWORD
                )
            )
        # Paying customers on Growth (25 sessions at a time, soft cap), so other apps' tests never meet
        # a trial's limits; billing's tests give them the plans they need.
        growth = Plan.objects.get(slug="growth")
        seeded = Subscription.objects.filter(organization__slug__in=["alpha", "beta"])
        PlanPeriod.objects.filter(subscription__in=seeded).update(plan=growth)
        seeded.update(plan=growth, status="active", trial_ends_at=None)
        seeds.remember()
    yield
    with django_db_blocker.unblock():
        close_all_database_sessions()


def close_all_database_sessions() -> None:
    """Server processes and async worker threads may still hold connections; the test database must drop."""
    connections.close_all()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _server_writes_settle_before_flush(request: pytest.FixtureRequest) -> Iterator[None]:
    """A transactional test ends with TRUNCATE; a server process may still be storing the end of the
    test's last session (its conversation, usage events). Wait for those writes, or the two deadlock."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so torn down (flushed) after this waits
    yield
    # Quiet for 150 ms in a row, not one quiet look: a session's last writes come in bursts (its end,
    # then usage, then a summary), and one snapshot between two of them let the flush deadlock.
    deadline, quiet_since = time.monotonic() + 5, None
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state NOT IN ('idle')"
            )
            (busy,) = cursor.fetchone()
        now = time.monotonic()
        quiet_since = None if busy else (quiet_since or now)
        if quiet_since is not None and now - quiet_since >= 0.15:
            return
        time.sleep(0.05)


def _is_transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    return bool(marker and marker.kwargs.get("transaction")) or "transactional_db" in getattr(item, "fixturenames", ())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After a transactional test's flush (it empties the public schema's tables; tenant schemas survive
    it), put the seeded organizations back at once (committed, so the next test's servers and workers
    see them even when that test runs in a transaction) and put their schemas' tables back as seeded:
    what the test stored there must not reach the tests after it. Not after the last test
    (``nextitem`` None, also under pytest-xdist, whose workers wait for a next test or the end): by
    then the session's fixtures are torn down, the test database with them, and the connection
    points at the development database."""
    result = yield
    if _is_transactional(item) and nextitem is not None:
        with item.config.stash[blocking_manager_key].unblock():
            seeds.restore()
            seeds.reset_tenant_schemas()
    return result


def _seeded(slug: str) -> SeededTenant:
    organization = Organization.objects.get(slug=slug)
    return SeededTenant(organization=organization, admin_email=f"admin@{slug}.example", host=f"{slug}.localhost")


@pytest.fixture
def alpha(db) -> SeededTenant:
    return _seeded("alpha")


@pytest.fixture
def alpha_with_canned_replies(alpha: SeededTenant) -> Iterator[SeededTenant]:
    """alpha's assistant without tools: the simulated model answers "Do you deliver?" from its canned
    replies, not from whatever knowledge or opening hours (and time of day) its tools would find."""
    from tests.voice.sessions import assistant_settings_now

    with assistant_settings_now(alpha, tools=[]):
        yield alpha


@pytest.fixture
def beta(db) -> SeededTenant:
    return _seeded("beta")


@pytest.fixture(autouse=True)
def _public_schema_and_clean_cache() -> Iterator[None]:
    """Every test starts on the public schema with empty caches (a rolled-back domain must not linger)."""
    yield
    if hasattr(connection, "set_schema_to_public"):
        connection.set_schema_to_public()
    for alias in ("default", "platform"):
        caches[alias].clear()
    from billing.cache import forget_cached_prices

    forget_cached_prices()  # a rolled-back price must not linger either


def require_tool(name: str, why: str) -> str:
    """The path of an executable the test needs; skips with a printed reason, or fails under AURA_REQUIRE_ALL=1."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} is not installed ({why}); `make test` installs it"
    if os.environ.get("AURA_REQUIRE_ALL") == "1":
        pytest.fail(message + " — AURA_REQUIRE_ALL=1 forbids skipping")
    pytest.skip(message)
    raise AssertionError("unreachable")


from tests.servers import (  # noqa: E402, F401 - session fixtures for end-to-end tests
    daphne_server,
    newcomer_server,
    twilio_rest,
)
