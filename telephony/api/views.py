"""``/api/v1/calls/``: place a phone call from one of the organization's numbers (scope ``calls:write``),
list and read calls (``read``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from twilio.base.exceptions import TwilioException

from aura.api.views import OrganizationListCreateRetrieveViewSet
from telephony.actions import do_place_call
from telephony.api.serializers import CallSerializer, NewCallSerializer
from telephony.models import Call, PhoneNumber
from telephony.queries import destination_allowed
from tenants.models import ApiScope


class CarrierError(exceptions.APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "Twilio did not accept the call."
    default_code = "carrier_error"


class CallViewSet(OrganizationListCreateRetrieveViewSet):
    queryset = Call.objects.all()
    serializer_class = CallSerializer
    write_scope = ApiScope.CALLS_WRITE
    cursor_ordering = ("-started_at", "-id")

    @extend_schema(request=NewCallSerializer, responses={201: CallSerializer})
    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Place a call. Twilio rings ``to``; once answered, the number's assistant talks (``first_message``
        first). Follow it here or with the ``call.started`` / ``call.ended`` webhooks."""
        serializer = NewCallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        number = PhoneNumber.objects.filter(organization=self.organization, number=data["from"], is_active=True).first()
        if number is None:
            raise exceptions.ValidationError({"from": ["Not one of your active phone numbers."]})
        if not destination_allowed(number, data["to"]):
            raise exceptions.ValidationError({"to": ["Calls from this number cannot go to this country."]})
        try:
            call = do_place_call(
                number=number, to=data["to"], first_message=data.get("first_message", ""), metadata=data.get("metadata")
            )
        except TwilioException as exc:
            raise CarrierError(f"Twilio did not accept the call: {exc}"[:300]) from None
        return Response(CallSerializer(call).data, status=status.HTTP_201_CREATED)
