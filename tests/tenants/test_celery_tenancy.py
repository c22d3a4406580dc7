"""A task queued inside tenant A runs in schema A: real Redis broker, real worker process."""

from __future__ import annotations

import pytest
from django_tenants.utils import tenant_context

from aura.celery import app
from tests.processes import python_module, running
from tests.tenants.celery_probe import schema_and_assistants


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker):
    def ready() -> bool:
        try:
            return bool(app.control.ping(timeout=0.5))
        except Exception:  # noqa: BLE001 - not up yet
            return False

    command = python_module(
        "celery",
        "-A",
        "aura",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "--loglevel=INFO",
        "--include=tests.tenants.celery_probe",
        "--without-gossip",
        "--without-mingle",
        "--hostname=probe@%h",
    )
    with running(command, ready=ready, log_name="celery-worker"):
        yield


@pytest.mark.e2e
@pytest.mark.django_db
@pytest.mark.usefixtures("celery_worker")
def test_tasks_run_in_the_schema_they_were_queued_from(alpha, beta):
    results = {}
    for tenant in (alpha, beta):
        with tenant_context(tenant.organization):
            results[tenant.organization.slug] = schema_and_assistants.delay()

    assert results["alpha"].get(timeout=20) == {"schema": "t_alpha", "assistants": ["Alpha assistant"]}
    assert results["beta"].get(timeout=20) == {"schema": "t_beta", "assistants": ["Beta assistant"]}


@pytest.mark.e2e
@pytest.mark.django_db
@pytest.mark.usefixtures("celery_worker")
def test_a_task_queued_outside_any_tenant_runs_in_public():
    result = app.send_task("tests.tenants.celery_probe.schema_and_assistants")

    with pytest.raises(Exception, match="voice_assistant"):
        result.get(timeout=20)
