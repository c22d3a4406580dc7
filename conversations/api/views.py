"""``/api/v1/conversations/``: list (filters, cursor pages), detail with turns, export (JSON/CSV), delete;
``/leads/``, ``/handoffs/`` and ``/visitors/``: what the assistants' tools and memory stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_tenants.utils import tenant_context
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from billing.sessions import SessionRefusedError, check_new_session
from conversations import exports
from conversations.actions import (
    do_delete_conversations,
    do_delete_lead,
    do_forget_visitor,
    do_resolve_handoff,
    do_start_conversation,
)
from conversations.api import text as text_api
from conversations.api.serializers import (
    ConversationDetailSerializer,
    ConversationFilterSerializer,
    ConversationSerializer,
    ExportFilterSerializer,
    HandoffFilterSerializer,
    HandoffSerializer,
    LeadFilterSerializer,
    LeadSerializer,
    MessageReplySerializer,
    MessageSerializer,
    TextConversationSerializer,
    VisitorProfileSerializer,
)
from conversations.models import Channel, Conversation, Handoff, Lead, Status, Turn, VisitorProfile
from conversations.queries import with_emotion, with_intent
from core.api.errors import Conflict
from core.api.schema import ErrorSerializer
from tenants.api.base import UUID_ID, ApiViewMixin
from tenants.models import ApiScope, Organization
from voice.models import Assistant

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


class ReplyError(exceptions.APIException):
    """A refusal or failure with its own status (402/429 quota, 504 reply timeout)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        self.status_code = status_code
        super().__init__(message, code)


_TEXT_ERRORS = {402: ErrorSerializer, 504: ErrorSerializer}


class TextConversationMixin:
    """``POST conversations/text/``, ``conversations/{id}/messages/`` and ``conversations/{id}/end/``."""

    @extend_schema(request=TextConversationSerializer, responses={201: ConversationSerializer, **_TEXT_ERRORS})
    @action(detail=False, methods=["post"], url_path="text")
    def text(self, request: Request) -> Response:
        """Start a text conversation (channel "api") with an assistant; no greeting is sent."""
        serializer = TextConversationSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        assistant_id = serializer.validated_data.get("assistant_id")
        assistants = Assistant.objects.all()
        assistant = (
            assistants.filter(pk=assistant_id).first()
            if assistant_id
            else assistants.order_by("-is_default", "pk").first()
        )
        if assistant is None:
            raise exceptions.ValidationError({"assistant_id": ["No such assistant in your organization."]})
        try:
            check_new_session(self.organization.pk)
        except SessionRefusedError as refused:
            raise ReplyError(refused.http_status, refused.code, refused.message) from None
        conversation = do_start_conversation(
            conversation_id=uuid.uuid4(),
            assistant_id=assistant.pk,
            visitor_id=serializer.validated_data.get("visitor_id", ""),
            channel=Channel.API,
            origin="api",
        )
        created = conversations_matching({}).get(pk=conversation.pk)
        return Response(ConversationSerializer(created).data, status=status.HTTP_201_CREATED)

    def _open_api_conversation(self) -> tuple[Conversation, text_api.ConversationLock]:
        conversation = self.get_object()
        if conversation.channel != Channel.API:
            raise Conflict("Only conversations started with conversations/text/ take messages.", "not_api_conversation")
        if conversation.status != Status.ACTIVE:
            raise Conflict("This conversation has ended; start a new one.", "conversation_ended")
        lock = text_api.ConversationLock(str(conversation.pk))
        if not lock.acquire():
            raise Conflict("A reply in this conversation is still running; wait for it.", "conversation_busy")
        return conversation, lock

    @extend_schema(
        request=MessageSerializer,
        responses={
            (200, "application/json"): MessageReplySerializer,
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR, description="Server-sent events: one per protocol event of the reply."
            ),
            **_TEXT_ERRORS,
        },
    )
    @action(detail=True, methods=["post"])
    def messages(self, request: Request, pk: str | None = None) -> Response | StreamingHttpResponse:
        """Send the visitor's message; the reply comes whole (JSON) or streamed (``"stream": true``, SSE)."""
        serializer = MessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if not serializer.validated_data["text"].strip():
            raise exceptions.ValidationError({"text": ["This field may not be blank."]})
        conversation, lock = self._open_api_conversation()
        arguments = {
            "conversation_id": str(conversation.pk),
            "assistant_id": conversation.assistant_id,
            "visitor_id": conversation.visitor_id,
            "text": serializer.validated_data["text"],
        }
        if serializer.validated_data["stream"]:
            response = StreamingHttpResponse(
                text_api.reply_stream(self.organization, lock, **arguments), content_type="text/event-stream"
            )
            response["Cache-Control"] = "no-cache"
            response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
            return response
        events = text_api.reply_whole(self.organization, lock, **arguments)
        return Response(_whole_reply(str(conversation.pk), events))

    @extend_schema(request=None, responses=ConversationSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request: Request, pk: str | None = None) -> Response:
        """End the conversation (the visitor's profile is learnt, as after a voice session). Ending twice is fine."""
        conversation = self.get_object()
        if conversation.status == Status.ACTIVE:
            if conversation.channel != Channel.API:
                raise Conflict("Only conversations started with conversations/text/ end here.", "not_api_conversation")
            conversation, lock = self._open_api_conversation()
            try:
                text_api.run_here(
                    self.organization,
                    text_api.finish,
                    conversation_id=str(conversation.pk),
                    assistant_id=conversation.assistant_id,
                    visitor_id=conversation.visitor_id,
                )
            finally:
                lock.release()
        return Response(ConversationSerializer(conversations_matching({}).get(pk=conversation.pk)).data)


def _whole_reply(conversation_id: str, events: list[dict[str, object]]) -> dict[str, object]:
    last = events[-1] if events else {"type": "error", "code": "internal_error", "message": "No reply."}
    if last["type"] == "error":
        raise ReplyError(int(last.get("http_status", 500)), str(last["code"]), str(last["message"]))
    done = next(event for event in reversed(events) if event["type"] == "response.done")
    reply_id = done["response_id"]
    tools = [event for event in events if event["type"] == "response.tool" and event["response_id"] == reply_id]
    return {
        "conversation_id": conversation_id,
        "response_id": done["response_id"],
        "text": done["text"],
        "status": done["status"],
        "tool_calls": [{key: tool[key] for key in ("name", "status", "duration_ms")} for tool in tools],
        "metrics": done["metrics"],
        "conversation_ended": not Conversation.objects.filter(pk=conversation_id, status=Status.ACTIVE).exists(),
    }


@extend_schema_view(
    list=extend_schema(parameters=[ConversationFilterSerializer]),
    retrieve=extend_schema(responses=ConversationDetailSerializer),
)
class ConversationViewSet(
    TextConversationMixin,
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
        do_forget_visitor(visitor_id=instance.visitor_id)
