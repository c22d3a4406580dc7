"""Text conversations over the REST API: ``POST conversations/text/``, ``conversations/{id}/messages/`` and
``conversations/{id}/end/``. An assistant answers them (``voice.api.text`` runs a voice session without
audio), so they are added here, above conversations, to its conversations resource."""

from __future__ import annotations

import uuid

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from billing.sessions import SessionRefusedError, check_new_session
from conversations.actions import do_start_conversation
from conversations.api import views as conversations_api
from conversations.api.serializers import (
    ConversationSerializer,
    MessageReplySerializer,
    MessageSerializer,
    TextConversationSerializer,
)
from conversations.api.views import conversations_matching
from conversations.models import Channel, Conversation, Status
from core.api.errors import Conflict
from core.api.schema import ErrorSerializer
from voice.api import text as text_api
from voice.models import Assistant


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


class ConversationViewSet(TextConversationMixin, conversations_api.ConversationViewSet):
    # conversations' resource with the text actions: registered as ``conversations`` by voice.api.urls.
    pass
