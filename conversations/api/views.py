"""``/api/v1/conversations/``: list (filters, cursor pages), detail with turns, export (JSON/CSV), delete;
``/leads/``, ``/handoffs/`` and ``/visitors/``: what the assistants' tools and memory stored."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_tenants.utils import tenant_context
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from aura.api.errors import Conflict
from aura.api.views import UUID_ID, ApiViewMixin
from conversations.actions import do_delete_lead, do_forget_visitor, do_resolve_handoff
from conversations.api.serializers import (
    CONVERSATION_FIELDS,
    TURN_FIELDS,
    ConversationDetailSerializer,
    ConversationFilterSerializer,
    ConversationSerializer,
    ExportFilterSerializer,
    HandoffFilterSerializer,
    HandoffSerializer,
    LeadFilterSerializer,
    LeadSerializer,
    TurnSerializer,
    VisitorProfileSerializer,
)
from conversations.models import Conversation, Handoff, Lead, Status, Turn, VisitorProfile
from tenants.models import ApiScope, Organization

EXPORT_MAX_CONVERSATIONS = 10_000
# An active conversation may still be written to by a live session; after this long it is stale.
ACTIVE_DELETE_AFTER = timedelta(hours=4)


def conversations_matching(filters: dict[str, object]) -> QuerySet[Conversation]:
    """The organization's conversations (the request runs in its schema), filtered, with counts."""
    queryset = Conversation.objects.annotate(
        turn_count=Count("turns"),
        interrupted=Exists(Turn.objects.filter(conversation=OuterRef("pk"), interrupted=True)),
    )
    if (after := filters.get("started_after")) is not None:
        queryset = queryset.filter(started_at__gte=after)
    if (before := filters.get("started_before")) is not None:
        queryset = queryset.filter(started_at__lt=before)
    for field in ("visitor_id", "status", "channel", "assistant_id"):
        if filters.get(field) not in (None, ""):
            queryset = queryset.filter(**{field: filters[field]})
    if filters.get("interrupted") is not None:
        queryset = queryset.filter(interrupted=filters["interrupted"])
    return queryset


@extend_schema_view(
    list=extend_schema(parameters=[ConversationFilterSerializer]),
    retrieve=extend_schema(responses=ConversationDetailSerializer),
)
class ConversationViewSet(
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ConversationSerializer
    lookup_value_regex = UUID_ID
    cursor_ordering = ("-started_at", "-id")

    def get_queryset(self) -> QuerySet[Conversation]:
        if self.action == "list":
            filters = ConversationFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            return conversations_matching(filters.validated_data)
        queryset = conversations_matching({})
        if self.action == "retrieve":
            queryset = queryset.prefetch_related(Prefetch("turns", queryset=Turn.objects.order_by("index")))
        return queryset

    def get_serializer_class(self) -> type:
        return ConversationDetailSerializer if self.action == "retrieve" else ConversationSerializer

    def perform_destroy(self, instance: Conversation) -> None:
        if instance.status == Status.ACTIVE and instance.started_at > timezone.now() - ACTIVE_DELETE_AFTER:
            raise Conflict("This conversation is still going on; delete it once it has ended.", "conversation_active")
        instance.delete()

    @extend_schema(
        parameters=[ExportFilterSerializer],
        responses={
            (200, "application/json"): ConversationDetailSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per turn."),
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request: Request) -> StreamingHttpResponse:
        """Every matching conversation (newest first, at most 10,000) with its turns, streamed."""
        filters = ExportFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        options = dict(filters.validated_data)
        export_format = options.pop("format")
        organization = self.organization
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        if export_format == "csv":
            response = StreamingHttpResponse(_csv_rows(organization, options), content_type="text/csv; charset=utf-8")
        else:
            response = StreamingHttpResponse(_json_chunks(organization, options), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="conversations-{stamp}.{export_format}"'
        return response


def _export_queryset(filters: dict[str, object]) -> Iterator[Conversation]:
    queryset = conversations_matching(filters).order_by("-started_at", "-id")[:EXPORT_MAX_CONVERSATIONS]
    return queryset.prefetch_related(Prefetch("turns", queryset=Turn.objects.order_by("index"))).iterator(
        chunk_size=200
    )


def _json_chunks(organization: Organization, filters: dict[str, object]) -> Iterator[str]:
    # The response streams after the view returned (and left the tenant's schema): enter it again.
    with tenant_context(organization):
        yield "["
        for number, conversation in enumerate(_export_queryset(filters)):
            data = ConversationDetailSerializer(conversation).data
            yield ("," if number else "") + json.dumps(data, cls=DjangoJSONEncoder)
        yield "]"


def _csv_rows(organization: Organization, filters: dict[str, object]) -> Iterator[str]:
    header = [f"conversation_{name}" for name in CONVERSATION_FIELDS] + [f"turn_{name}" for name in TURN_FIELDS]
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(row: list[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        return buffer.getvalue()

    with tenant_context(organization):
        yield line(header)
        for conversation in _export_queryset(filters):
            head = [ConversationSerializer(conversation).data[name] for name in CONVERSATION_FIELDS]
            turns = list(conversation.turns.all()) or [None]
            for turn in turns:
                data = TurnSerializer(turn).data if turn is not None else {}
                yield line(head + [data.get(name, "") for name in TURN_FIELDS])


@extend_schema_view(list=extend_schema(parameters=[LeadFilterSerializer]))
class LeadViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Leads the assistants captured (capture_lead tool)."""

    serializer_class = LeadSerializer
    cursor_ordering = ("-created_at", "-id")

    def get_queryset(self) -> QuerySet[Lead]:
        queryset = Lead.objects.all()
        if self.action == "list":
            filters = LeadFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if (after := filters.validated_data.get("created_after")) is not None:
                queryset = queryset.filter(created_at__gte=after)
            if (before := filters.validated_data.get("created_before")) is not None:
                queryset = queryset.filter(created_at__lt=before)
        return queryset

    def perform_destroy(self, instance: Lead) -> None:
        do_delete_lead(lead_id=instance.pk)


@extend_schema_view(list=extend_schema(parameters=[HandoffFilterSerializer]))
class HandoffViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Hand-offs to a human (handoff tool); ``resolve`` marks one done."""

    serializer_class = HandoffSerializer
    cursor_ordering = ("-created_at", "-id")

    def get_queryset(self) -> QuerySet[Handoff]:
        queryset = Handoff.objects.all()
        if self.action == "list":
            filters = HandoffFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if state := filters.validated_data.get("state"):
                queryset = queryset.filter(state=state)
        return queryset

    @extend_schema(request=None, responses=HandoffSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        """Mark the hand-off done."""
        handoff = do_resolve_handoff(handoff_id=self.get_object().pk)
        return Response(HandoffSerializer(handoff).data)


class VisitorProfileViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """What the assistants remember of returning visitors. Personal data: write scope even to read.
    Deleting forgets the visitor (their next conversation starts from nothing)."""

    serializer_class = VisitorProfileSerializer
    queryset = VisitorProfile.objects.all()
    cursor_ordering = ("-updated_at", "-id")
    read_scope = ApiScope.WRITE

    def perform_destroy(self, instance: VisitorProfile) -> None:
        do_forget_visitor(visitor_id=instance.visitor_id)
