"""The platform admin's form for opening an organization."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe

from tenants.actions import NewOrganization
from tenants.models import SLUG_PATTERN, WEEKDAYS, ApiKey, ApiScope, Organization

DAY_NAMES = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
RANGES_A_DAY = 2  # a morning and an afternoon (a lunch break); the stored structure takes any number


class OrganizationCreationForm(forms.ModelForm):
    admin_email = forms.EmailField(label="First admin's e-mail", help_text="They log in with this address.")
    admin_password = forms.CharField(label="First admin's password", widget=forms.PasswordInput, strip=False)

    class Meta:
        model = Organization
        fields = ["name", "slug"]
        # The admin renders help text as HTML: the host pattern is text.
        help_texts = {
            "slug": escape(f"Becomes the host <slug>.<base domain> and the schema name. Pattern: {SLUG_PATTERN}")
        }

    def new_organization(self) -> NewOrganization:
        data = self.cleaned_data
        return NewOrganization(
            name=data.get("name", ""),
            slug=data.get("slug", ""),
            admin_email=data.get("admin_email", ""),
            admin_password=data.get("admin_password", ""),
        )

    def clean(self) -> dict[str, object]:
        cleaned = super().clean()
        try:
            self.new_organization().validate()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    if field not in self.errors or message not in self.errors[field]:
                        self.add_error(field if field in self.fields else None, message)
        return cleaned

    def validate_unique(self) -> None:
        """Uniqueness is checked by NewOrganization.validate with friendlier messages."""


class ApiKeyCreationForm(forms.ModelForm):
    """A tenant admin issues an API key; its secret is shown once, on the next page."""

    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ApiScope.READ],
        help_text="admin includes write (changes), write includes read.",
    )

    class Meta:
        model = ApiKey
        fields = ["name", "expires_at"]

    def clean_expires_at(self) -> object:
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now():
            raise ValidationError("Choose a moment in the future.")
        return value


class WeeklyHoursWidget(forms.Widget):
    """Opening hours day by day: up to two open–close ranges a weekday, as time inputs. Reads and writes
    the stored structure ``{"mon": [["09:00", "17:00"]], …}`` (a day without a range is closed)."""

    def value_from_datadict(self, data: object, files: object, name: str) -> dict[str, list[list[str]]]:
        hours: dict[str, list[list[str]]] = {}
        for day in WEEKDAYS:
            ranges = []
            for index in range(RANGES_A_DAY):
                opens = (data.get(f"{name}_{day}_{index}_opens") or "").strip()  # type: ignore[attr-defined]
                closes = (data.get(f"{name}_{day}_{index}_closes") or "").strip()  # type: ignore[attr-defined]
                if opens or closes:
                    ranges.append([opens, closes])
            if ranges:
                hours[day] = ranges
        return hours

    def value_omitted_from_data(self, data: object, files: object, name: str) -> bool:
        return False  # every day empty is a valid answer: closed all week

    def render(self, name: str, value: object, attrs: dict | None = None, renderer: object = None) -> str:
        hours = value if isinstance(value, dict) else {}
        rows = []
        for day in WEEKDAYS:
            ranges = hours.get(day) if isinstance(hours.get(day), list) else []
            cells = []
            for index in range(RANGES_A_DAY):
                pair = ranges[index] if index < len(ranges) and isinstance(ranges[index], list) else ["", ""]
                opens, closes = (str(pair[0]), str(pair[1])) if len(pair) == 2 else ("", "")
                cells.append(
                    format_html(
                        '<td><input type="time" name="{n}_{d}_{i}_opens" value="{o}" aria-label="{day} opens{r}">'
                        ' – <input type="time" name="{n}_{d}_{i}_closes" value="{c}"'
                        ' aria-label="{day} closes{r}"></td>',
                        n=name,
                        d=day,
                        i=index,
                        o=opens if opens != "24:00" else "23:59",
                        c=closes if closes != "24:00" else "23:59",
                        day=DAY_NAMES[day],
                        r=" (second range)" if index else "",
                    )
                )
            rows.append(format_html('<tr><th scope="row">{}</th>{}</tr>', DAY_NAMES[day], mark_safe("".join(cells))))
        return format_html(
            '<table class="aura-hours" id="id_{}"><thead><tr><th scope="col">Day</th><th scope="col">Opens – closes'
            '</th><th scope="col">Second range (after a break)</th></tr></thead><tbody>{}</tbody></table>',
            name,
            mark_safe("".join(rows)),
        )


class TimeZoneField(forms.CharField):
    """A searchable time zone: type a few letters, pick from every IANA zone (zoneinfo.available_timezones)."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("widget", forms.TextInput(attrs={"list": "aura-time-zones", "autocomplete": "off"}))
        super().__init__(**kwargs)

    def validate(self, value: str) -> None:
        super().validate(value)
        if value and value not in time_zone_names():
            raise ValidationError(f"“{value}” is not a time zone; choose one from the list, e.g. Europe/Paris.")

    def widget_attrs(self, widget: forms.Widget) -> dict[str, str]:
        return {**super().widget_attrs(widget), "list": "aura-time-zones"}


def time_zone_names() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def time_zone_datalist() -> str:
    """The ``<datalist>`` the time zone input searches (rendered once on the page)."""
    return format_html(
        '<datalist id="aura-time-zones">{}</datalist>',
        mark_safe("".join(format_html('<option value="{}">', name) for name in sorted(time_zone_names()))),
    )


class OrganizationSettingsForm(forms.ModelForm):
    """What a tenant admin sets for the whole organization: hours for the business-hours tool, and privacy."""

    time_zone = TimeZoneField(
        max_length=64, help_text="Type to search, e.g. “Paris” or “New_York”. Opening hours are in this time zone."
    )
    business_hours = forms.Field(
        widget=WeeklyHoursWidget,
        required=False,
        label="Opening hours",
        help_text="Leave a day empty when you are closed; the second range is for a break at midday.",
    )

    class Meta:
        model = Organization
        fields = ["time_zone", "business_hours", "redact_personal_data", "record_audio", "retention_days"]

    def clean_business_hours(self) -> dict[str, list[list[str]]]:
        hours = self.cleaned_data.get("business_hours") or {}
        for day, ranges in hours.items():  # a range left half empty is named before the model's check
            for opens, closes in ranges:
                if not opens or not closes:
                    raise ValidationError(f"{DAY_NAMES[day]}: give both the opening and the closing time.")
        return hours
