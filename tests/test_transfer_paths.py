"""Target path templates: substitution, DRACOON's naming rules, and escape attempts refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recstore.common.paths import (
    MAX_NAME,
    TargetPathError,
    check_node_name,
    node_name_problem,
    render_target_path,
)


def render(
    template: str, instance: str = "acme.example.com", meeting_type: str = "sales call"
) -> tuple[str, ...]:
    return render_target_path(template, instance=instance, meeting_type=meeting_type)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("some room/sub-room", ("some room", "sub-room")),  # the seed's path, no variables
        ("$instance/$meetingType", ("acme.example.com", "sales call")),
        ("${instance}/${meetingType}", ("acme.example.com", "sales call")),
        ("Recordings/${instance}_2024", ("Recordings", "acme.example.com_2024")),
        ("$meetingType archive", ("sales call archive",)),
        ("$instance-$meetingType", ("acme.example.com-sales call",)),
        ("cost $$5", ("cost $5",)),
        ("$$instance", ("$instance",)),
        ("a/b/c/d", ("a", "b", "c", "d")),
        ("Aufzeichnungen über $meetingType", ("Aufzeichnungen über sales call",)),
        ("x" * MAX_NAME, ("x" * MAX_NAME,)),
        ("a.b", ("a.b",)),
        ("...a", ("...a",)),
        ("CONSOLE", ("CONSOLE",)),  # only the exact device names are reserved
        ("COM0", ("COM0",)),
        ("LPT10", ("LPT10",)),
        ("a-", ("a-",)),
        ("in the middle", ("in the middle",)),
    ],
)
def test_templates_render_to_room_names(template: str, expected: tuple[str, ...]) -> None:
    assert render(template) == expected


def test_values_are_not_substituted_again() -> None:
    assert render("$meetingType", meeting_type="$instance") == ("$instance",)


def test_unicode_values_are_fine() -> None:
    assert render("Aufzeichnungen/$meetingType", meeting_type="Beratung über Verträge") == (
        "Aufzeichnungen",
        "Beratung über Verträge",
    )


@pytest.mark.parametrize(
    ("template", "instance", "meeting_type", "why"),
    [
        # escape attempts
        ("/abs/path", "i", "t", "relative to the parent room"),
        ("/", "i", "t", "relative to the parent room"),
        ("../x", "i", "t", "segment 1 is '..'"),
        ("a/../../b", "i", "t", "segment 2 is '..'"),
        ("a/..", "i", "t", "segment 2 is '..'"),
        ("./x", "i", "t", "segment 1 is '.'"),
        ("$instance", "..", "t", "renders to '..', which is a relative reference"),
        ("x/$meetingType/y", "i", ".", "renders to '.', which is a relative reference"),
        ("$instance/x", "a/b", "t", "contains '/' and may not add room levels"),
        ("$meetingType", "i", "../../etc", "contains '/' and may not add room levels"),
        ("$meetingType", "i", "/abs", "contains '/' and may not add room levels"),
        ("x$meetingType", "i", "/", "contains '/' and may not add room levels"),
        ("\\\\server\\share", "i", "t", "contains '\\\\'"),
        ("$meetingType", "i", "a\\b", "contains '\\\\'"),
        # empty segments and empty results
        ("", "i", "t", "template is empty"),
        ("   ", "i", "t", "template is empty"),
        ("a//b", "i", "t", "segment 2 is empty"),
        ("a/b/", "i", "t", "segment 3 is empty"),
        ("$meetingType", "i", "", "renders to '', which is empty"),
        ("$instance/$meetingType", "i", "", "segment 2 renders to '', which is empty"),
        # variables
        ("$unknown", "i", "t", "unknown variable $unknown"),
        ("$Instance", "i", "t", "unknown variable $Instance"),
        ("$instance_2024", "i", "t", "unknown variable $instance_2024"),
        ("${meetingtype}", "i", "t", "unknown variable $meetingtype"),
        ("price $", "i", "t", "'$' that starts no variable"),
        ("${instance", "i", "t", "'$' that starts no variable"),
        ("$5", "i", "t", "'$' that starts no variable"),
        # DRACOON's naming rules, on the template and on the values
        ("a" * (MAX_NAME + 1), "i", "t", f"longer than {MAX_NAME} characters"),
        ("$instance", "i" * (MAX_NAME + 1), "t", f"longer than {MAX_NAME} characters"),
        ("x" * 141 + "$meetingType", "i", "sales call", f"longer than {MAX_NAME}"),
        ("name.", "i", "t", "ends with '.'"),
        ("$meetingType", "i", "etc.", "ends with '.'"),
        (" lead", "i", "t", "starts or ends with a space"),
        ("trail ", "i", "t", "starts or ends with a space"),
        ("$meetingType", "i", " padded", "starts or ends with a space"),
        ("-dash", "i", "t", "starts with '-'"),
        ("$meetingType", "i", "-rf", "starts with '-'"),
        ("CON", "i", "t", "reserved device name"),
        ("con", "i", "t", "reserved device name"),
        ("lpt1.txt", "i", "t", "reserved device name"),
        ("Nul.tar.gz", "i", "t", "reserved device name"),
        ("$meetingType", "i", "AUX", "reserved device name"),
        ("COM9", "i", "t", "reserved device name"),
        ("PRN/x", "i", "t", "reserved device name"),
        ("tab\there", "i", "t", "control character U+0009"),
        ("$meetingType", "i", "new\nline", "control character U+000A"),
        ("nul\x00byte", "i", "t", "control character U+0000"),
        ("del\x7f", "i", "t", "control character U+007F"),
        ("c1\x85", "i", "t", "control character U+0085"),
        ("what?", "i", "t", "contains '?'"),
        ("a<b", "i", "t", "contains '<'"),
        ("a>b", "i", "t", "contains '>'"),
        ("c:", "i", "t", "contains ':'"),
        ('say "hi"', "i", "t", "contains '\"'"),
        ("a|b", "i", "t", "contains '|'"),
        ("a*", "i", "t", "contains '*'"),
    ],
)
def test_unsafe_paths_are_refused(
    template: str, instance: str, meeting_type: str, why: str
) -> None:
    with pytest.raises(TargetPathError) as caught:
        render(template, instance, meeting_type)
    assert isinstance(caught.value, ValueError)
    assert why in str(caught.value)


def test_error_messages_stay_short() -> None:
    with pytest.raises(TargetPathError) as caught:
        render("$meetingType", meeting_type="x" * 10_000)
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize("name", ["test-video.mp4", "a", "Room 1", "ü" * MAX_NAME, "$x", "#1"])
def test_good_node_names(name: str) -> None:
    assert node_name_problem(name) is None
    assert check_node_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "is empty"),
        ("..", "relative reference"),
        ("a" * (MAX_NAME + 1), "longer than"),
        ("a/b", "contains '/'"),
        ("-x", "starts with '-'"),
        ("x.", "ends with '.'"),
        ("CON.mp4", "reserved"),
        # issue 33 §5: displays as "abcexe.txt"
        ("abc\u202etxt.exe", "contains the format character U+202E"),
        ("zero\u200bwidth", "format character U+200B"),
        ("joiner\u2060x", "format character U+2060"),
        ("line\u2028break", "line separator character U+2028"),
        ("private\ue000use", "private use character U+E000"),
        ("unassigned\U000e0080x", "unassigned character U+E0080"),
        ("hangul\u3164filler", "invisible character U+3164"),
    ],
)
def test_bad_node_names(name: str, why: str) -> None:
    problem = node_name_problem(name)
    assert problem is not None
    assert why in problem
    with pytest.raises(TargetPathError, match="the name"):
        check_node_name(name)


@pytest.mark.parametrize(
    "name", ["Jane Doe interview?", "Jane Doe interview.", "-Jane Doe interview", "Jane Doe\t"]
)
def test_the_reason_does_not_repeat_the_name(name: str) -> None:
    # job.py shows the reason for a key's file name, which may carry personal data.
    problem = node_name_problem(name)
    assert problem is not None
    assert "Jane" not in problem


unsafe_values = st.text(min_size=1, max_size=20).map(lambda s: s + "/" + s)


@given(instance=unsafe_values)
def test_a_value_with_a_slash_never_adds_levels(instance: str) -> None:
    with pytest.raises(TargetPathError):
        render("rooms/$instance", instance=instance)


@given(st.text(max_size=40), st.text(max_size=40))
def test_rendered_names_are_always_acceptable(instance: str, meeting_type: str) -> None:
    try:
        names = render("Recordings/$instance/$meetingType", instance, meeting_type)
    except TargetPathError:
        return
    assert names == ("Recordings", instance, meeting_type)
    assert all(node_name_problem(name) is None for name in names)
    assert ".." not in names


def test_a_value_with_a_format_character_is_refused() -> None:
    with pytest.raises(TargetPathError, match="format character U\\+202E"):
        render("$meetingType", meeting_type="abc\u202etxt.exe")
