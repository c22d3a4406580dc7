"""``/api/v1/conversations/``: list (filters, cursor pages), detail with turns, export (JSON/CSV), delete;
``/leads/``, ``/handoffs/`` and ``/visitors/``: what the assistants' tools and memory stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_tenants.utils import tenant_context
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from conversations import exports
from conversations.actions import (
    do_delete_conversations,
    do_delete_lead,
    do_resolve_handoff,
)
from conversations.api.serializers import (
    ConversationDetailSerializer,
    ConversationFilterSerializer,
    ConversationSerializer,
    ExportFilterSerializer,
    HandoffFilterSerializer,
    HandoffSerializer,
    LeadFilterSerializer,
    LeadSerializer,
    VisitorProfileSerializer,
)
from conversations.models import Conversation, Handoff, Lead, Status, Turn, VisitorProfile
from conversations.queries import with_emotion, with_intent
from conversations.visitors import forget_visitor_everywhere
from core.api.errors import Conflict
from tenants.api.base import UUID_ID, ApiViewMixin
from tenants.models import ApiScope, Organization

# An active conversation may still be written to by a live session; after this long it is stale.
ACTIVE_DELETE_AFTER = timedelta(hours=4)


def conversations_matching(filters: dict[str, object]) -> QuerySet[Conversation]:
    """The organization's conversations (the request runs in its schema), filtered, with counts."""
    queryset = exports.with_counts(Conversation.objects.all())
    if (after := filters.get("started_after")) is not None:
        queryset = queryset.filter(started_at__gte=after)
    if (before := filters.get("started_before")) is not None:
        queryset = queryset.filter(started_at__lt=before)
    for field in ("visitor_id", "status", "channel", "assistant_id"):
        if filters.get(field) not in (None, ""):
            queryset = queryset.filter(**{field: filters[field]})
    if filters.get("interrupted") is not None:
        queryset = queryset.filter(interrupted=filters["interrupted"])
    if filters.get("emotion"):
        queryset = with_emotion(queryset, filters["emotion"])
    if filters.get("intent"):
        queryset = with_intent(queryset, filters["intent"])
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
        do_delete_conversations(Conversation.objects.filter(pk=instance.pk))  # its recordings too

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


def _json_chunks(organization: Organization, filters: dict[str, object]) -> Iterator[str]:
    # The response streams after the view returned (and left the tenant's schema): enter it again.
    with tenant_context(organization):
        yield from exports.json_chunks(exports.for_export(conversations_matching(filters)))


def _csv_rows(organization: Organization, filters: dict[str, object]) -> Iterator[str]:
    with tenant_context(organization):
        yield from exports.csv_lines(exports.for_export(conversations_matching(filters)))


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
        forget_visitor_everywhere(visitor_id=instance.visitor_id)
