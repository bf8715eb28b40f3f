"""Target path templates: substitution, DRACOON naming rules, and escape attempts refused."""

from __future__ import annotations

import pytest

from recstore.transfer.paths import TargetPathError, render_target_path


def render(
    template: str, instance: str = "acme.example.com", meeting_type: str = "sales call"
) -> tuple[str, ...]:
    return render_target_path(template, instance=instance, meeting_type=meeting_type)


def test_variables_in_both_spellings() -> None:
    assert render("$instance/$meetingType") == ("acme.example.com", "sales call")
    assert render("Recordings/${instance}/${meetingType} archive") == (
        "Recordings",
        "acme.example.com",
        "sales call archive",
    )
    assert render("cost $$5") == ("cost $5",)


@pytest.mark.parametrize(
    ("template", "instance", "meeting_type", "why"),
    [
        ("/abs/path", "i", "t", "relative"),
        ("a//b", "i", "t", "empty"),
        ("a/../b", "i", "t", "'..'"),
        ("../x", "i", "t", "'..'"),
        ("./x", "i", "t", "'.'"),
        ("$instance", "..", "t", "not a room name"),
        ("$instance/x", "a/b", "t", "contains '/'"),
        ("$meetingType", "i", "a\\b", "contains"),
        ("$meetingType", "i", "", "empty"),
        ("$unknown", "i", "t", "unknown variable $unknown"),
        ("price $", "i", "t", "'$'"),
        ("a" * 151, "i", "t", "longer than 150"),
        ("name.", "i", "t", "ends with"),
        (" lead", "i", "t", "starts with a space"),
        ("-dash", "i", "t", "starts with a space or '-'"),
        ("CON", "i", "t", "reserved"),
        ("lpt1.txt", "i", "t", "reserved"),
        ("tab\there", "i", "t", "contains"),
        ("what?", "i", "t", "contains '?'"),
    ],
)
def test_unsafe_paths_are_refused(
    template: str, instance: str, meeting_type: str, why: str
) -> None:
    with pytest.raises(TargetPathError, match=None) as caught:
        render(template, instance, meeting_type)
    assert why in str(caught.value)


def test_unicode_names_are_fine() -> None:
    assert render("Aufzeichnungen/$meetingType", meeting_type="Beratung über Verträge") == (
        "Aufzeichnungen",
        "Beratung über Verträge",
    )
