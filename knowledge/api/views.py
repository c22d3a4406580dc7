"""``/api/v1/documents/``: knowledge documents. Writes go through knowledge.actions (the admin's checks)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from core.api.parsers import StrictJSONParser
from knowledge.actions import do_add_document, do_delete_document, do_reindex_document, do_update_document
from knowledge.api.serializers import DocumentCreateSerializer, DocumentFilterSerializer, DocumentSerializer
from knowledge.extraction import ExtractionError
from knowledge.models import Document
from tenants.api.base import ApiViewMixin


class InvalidDocument(exceptions.APIException):
    """The file or text cannot be stored as a document (type, size, a .pdf that is not a PDF…)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "This document cannot be read."
    default_code = "invalid_document"


@extend_schema_view(
    list=extend_schema(parameters=[DocumentFilterSerializer]),
    create=extend_schema(request=DocumentCreateSerializer, responses={201: DocumentSerializer}),
)
class DocumentViewSet(
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = DocumentSerializer
    parser_classes = [StrictJSONParser, MultiPartParser]
    cursor_ordering = ("-created_at", "-id")

    def get_queryset(self) -> QuerySet[Document]:
        queryset = Document.objects.prefetch_related("assistants")
        if self.action == "list":
            filters = DocumentFilterSerializer(data=self.request.query_params)
            filters.is_valid(raise_exception=True)
            if state := filters.validated_data.get("status"):
                queryset = queryset.filter(status=state)
        return queryset

    def create(self, request: Request, *args: object, **kwargs: object) -> Response:
        """Upload a file (multipart/form-data) or paste text (JSON). Small pasted texts are ready at once;
        others are ``processing`` until a worker has indexed them."""
        serializer = DocumentCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            document = do_add_document(
                title=data.get("title", ""),
                file=data.get("file"),
                text=data.get("text", ""),
                language=data.get("language") or "en",
                assistant_ids=[assistant.pk for assistant in data.get("assistants", [])],
            )
        except ExtractionError as exc:
            raise InvalidDocument(str(exc)) from None
        return Response(DocumentSerializer(document).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: BaseSerializer) -> None:
        document, data = serializer.instance, serializer.validated_data
        assistants = data.get("assistants")
        serializer.instance = do_update_document(
            document=document,
            title=data.get("title", document.title),
            language=data.get("language", document.language),
            assistant_ids=None if assistants is None else [assistant.pk for assistant in assistants],
        )

    def perform_destroy(self, instance: Document) -> None:
        do_delete_document(document=instance)

    @extend_schema(request=None, responses=DocumentSerializer)
    @action(detail=True, methods=["post"])
    def reindex(self, request: Request, pk: str | None = None) -> Response:
        """Extract and index again (to retry a failure)."""
        return Response(DocumentSerializer(do_reindex_document(document=self.get_object())).data)
