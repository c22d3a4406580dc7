"""Knowledge fixtures: the alpha tenant's schema entered for the test, and a small bistro FAQ."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django_tenants.utils import tenant_context

from knowledge.actions import do_add_document
from knowledge.models import Document
from voice.models import Assistant

BISTRO_FAQ = """\
# Bistro Verde FAQ

## Menu

### Vegan dishes
Yes! Our menu has plenty of vegan options: a red lentil curry with coconut rice, a falafel wrap with tahini,
and a seasonal roasted vegetable salad. Every vegan dish is marked with a green leaf on the menu, and our
kitchen can adapt most other dishes on request.

### Allergies
Tell your server about any allergy before you order. We can prepare gluten-free pasta and nut-free desserts,
but our kitchen handles nuts, so we cannot rule out traces.

## Visiting

### Opening hours
We are open Tuesday to Sunday, from 11:30 to 22:00. On Mondays the bistro is closed.

### Reservations
You can book a table by phone or on our website. Groups of more than eight people should book at least two
days ahead.

### Parking
There is a public car park behind the bistro; the first two hours are free for our guests.
"""


@pytest.fixture
def in_alpha(alpha) -> Iterator[object]:
    """The test body runs in alpha's schema, as a request on alpha's host or a task queued there would."""
    with tenant_context(alpha.organization):
        yield alpha


@pytest.fixture
def assistant(in_alpha) -> Assistant:
    return Assistant.objects.get(name="Alpha assistant")


@pytest.fixture
def other_assistant(in_alpha) -> Assistant:
    return Assistant.objects.create(name="Sales line")


@pytest.fixture
def bistro_faq(in_alpha) -> Document:
    """Pasted text, small enough to be indexed at once."""
    return do_add_document(title="Bistro FAQ", text=BISTRO_FAQ)
