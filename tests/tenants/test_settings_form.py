"""The organization settings form: the weekly hours editor and the searchable time zone."""

from __future__ import annotations

import zoneinfo

from tenants.forms import OrganizationSettingsForm, WeeklyHoursWidget, time_zone_datalist

HOURS = {"mon": [["09:00", "12:00"], ["14:00", "18:00"]], "tue": [["09:00", "17:00"]], "sat": [["10:00", "14:00"]]}


def _posted(hours: dict[str, list[list[str]]], **other: str) -> dict[str, str]:
    data = {"time_zone": "Europe/Paris", "retention_days": "30", **other}
    for day, ranges in hours.items():
        for index, (opens, closes) in enumerate(ranges):
            data[f"business_hours_{day}_{index}_opens"] = opens
            data[f"business_hours_{day}_{index}_closes"] = closes
    return data


def test_the_weekly_editor_renders_and_reads_back_the_stored_structure():
    html = WeeklyHoursWidget().render("business_hours", HOURS)
    assert 'name="business_hours_mon_1_opens" value="14:00"' in html
    assert 'name="business_hours_sun_0_opens" value=""' in html  # a closed day: empty inputs
    assert 'aria-label="Monday closes (second range)"' in html
    form = OrganizationSettingsForm(_posted(HOURS))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["business_hours"] == HOURS  # closed days are simply absent


def test_the_weekly_editor_refuses_half_ranges_and_backwards_ones():
    form = OrganizationSettingsForm(_posted({"wed": [["09:00", ""]]}))
    assert (
        not form.is_valid()
        and "Wednesday: give both the opening and the closing time." in form.errors["business_hours"]
    )
    form = OrganizationSettingsForm(_posted({"mon": [["18:00", "09:00"]]}))
    assert not form.is_valid() and "closes before it opens" in str(form.errors["business_hours"])


def test_closed_all_week_is_an_answer():
    form = OrganizationSettingsForm(_posted({}))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["business_hours"] == {}


def test_the_time_zone_is_chosen_from_every_zone_and_nothing_else():
    assert OrganizationSettingsForm(_posted(HOURS, time_zone="America/New_York")).is_valid()
    form = OrganizationSettingsForm(_posted(HOURS, time_zone="Mars/Olympus"))
    assert not form.is_valid() and "is not a time zone" in str(form.errors["time_zone"])
    datalist = time_zone_datalist()
    assert datalist.count("<option") == len(zoneinfo.available_timezones())
    assert OrganizationSettingsForm().fields["time_zone"].widget.attrs["list"] == "aura-time-zones"
