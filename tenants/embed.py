"""The one tag a site pastes to embed a widget key (admin and API show it)."""

from __future__ import annotations

from django.utils.html import escape

from tenants.models import WidgetKey


def embed_tag(key: WidgetKey, script_url: str) -> str:
    """The one tag a site pastes, with the key's appearance as data attributes."""
    attributes = [f'src="{script_url}"', f'data-key="{key.key}"']
    if key.title:
        attributes.append(f'data-title="{escape(key.title)}"')
    if key.accent_color:
        attributes.append(f'data-accent="{key.accent_color}"')
    if key.placement != "bottom-right":
        attributes.append(f'data-placement="{key.placement}"')
    return f"<script {' '.join(attributes)} async></script>"
