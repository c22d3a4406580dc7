"""``/api/v1/calls/``: place a phone call from one of the organization's numbers (scope ``calls:write``),
list and read calls (``read``)."""

from __future__ import annotations

import logging

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from twilio.base.exceptions import TwilioException

from billing.metrics import QUOTA_REFUSALS
from billing.sessions import SessionRefusedError, check_new_session
from core.ratelimit import hit
from telephony.actions import do_place_call
from telephony.api.serializers import CallSerializer, NewCallSerializer
from telephony.models import Call, PhoneNumber
from telephony.queries import destination_refusal
from tenants.api.base import OrganizationListCreateRetrieveViewSet
from tenants.models import ApiScope

logger = logging.getLogger(__name__)


class CarrierError(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "Twilio did not accept the call."
    default_code = "carrier_error"


class CallRefused(exceptions.APIException):
    """The plan refuses a new call (402 ``quota_exceeded`` / ``subscription_inactive``, 429
    ``concurrent_limit``), or the organization is not ready (402 ``organization_inactive``)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        self.status_code = status_code
        super().__init__(message, code)


class CallViewSet(OrganizationListCreateRetrieveViewSet):
    queryset = Call.objects.all()
    serializer_class = CallSerializer
    write_scope = ApiScope.CALLS_WRITE
    cursor_ordering = ("-started_at", "-id")

    @extend_schema(request=NewCallSerializer, responses={201: CallSerializer})
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Place a call. Twilio rings ``to``; once answered, the number's assistant talks (``first_message``
        first). Follow it here or with the ``call.started`` / ``call.ended`` webhooks. The plan and the
        calls rate limit are checked before Twilio is asked to dial."""
        serializer = NewCallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        number = PhoneNumber.objects.filter(organization=self.organization, number=data["from"], is_active=True).first()
        if number is None:
            raise exceptions.ValidationError({"from": ["Not one of your active phone numbers."]})
        if refusal := destination_refusal(number, data["to"]):
            raise exceptions.ValidationError({"to": [refusal]})
        self._check_may_call()
        try:  # the call takes one of the plan's session slots while it rings (its stream's session keeps it)
            call = do_place_call(
                number=number, to=data["to"], first_message=data.get("first_message", ""), metadata=data.get("metadata")
            )
        except SessionRefusedError as refused:
            QUOTA_REFUSALS.labels(refused.code).inc()
            raise CallRefused(refused.http_status, refused.code, refused.message) from None
        except (TwilioException, OSError) as exc:  # Twilio's words may name the account: logged, not returned
            logger.warning("call from %s refused by Twilio: %s", number.number, exc)
            raise CarrierError() from None
        return Response(CallSerializer(call).data, status=status.HTTP_201_CREATED)

    def _check_may_call(self) -> None:
        """Nobody is rung for an organization that could not talk to them: not ready, over its plan, every
        session slot taken, or past ``AURA_CALLS_PER_ORGANIZATION_PER_MINUTE``."""
        organization = self.organization
        if not organization.is_ready:
            raise CallRefused(402, "organization_inactive", "Your organization is not active.")
        try:
            check_new_session(organization.pk)
        except SessionRefusedError as refused:
            QUOTA_REFUSALS.labels(refused.code).inc()
            raise CallRefused(refused.http_status, refused.code, refused.message) from None
        decision = hit(
            f"calls-org:{organization.pk}", limit=settings.AURA_CALLS_PER_ORGANIZATION_PER_MINUTE, window_s=60
        )
        if not decision.allowed:
            raise exceptions.Throttled(wait=decision.retry_after_s)
