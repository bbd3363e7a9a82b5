import json
from dataclasses import replace
from datetime import date

import pytest
from builders import local

from service.domain.calendar import Duration
from service.domain.events import Event
from service.domain.rules import (
    BUILTIN_RULESETS,
    Matcher,
    RuleProblem,
    RulesetInvalid,
    builtin_ruleset,
    builtin_ruleset_text,
    load_ruleset,
)

VISIT_RULE = """\
[[rules]]
id = "home-visit"
name = "Home visit within 5 working days"
source = "Local standard"
starts_on = ["referral_received"]
due = "5 working days"
met_by = ["child_visited"]
cancelled_by = [
    "case_closed",
    {type = "referral_decision_made", where = {outcome = ["early_help", "no_further_action"]}},
]
warn_before = "1 working day"
escalate_after = ["2 working days", "5 working days"]
"""

DECISION_RULE = """\
[[rules]]
id = "quick-decision"
name = "Decision within 1 working day"
source = "Local standard"
starts_on = ["referral_received"]
due = "1 working day"
met_by = ["referral_decision_made"]
"""


def line_of(text: str, snippet: str, occurrence: int = 1) -> int:
    """The 1-based line of the n-th line containing `snippet`, as an editor shows it."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if snippet in line]
    return found[occurrence - 1]


def problems_of(text: str, fmt: str = "toml") -> tuple[RuleProblem, ...]:
    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(text, format=fmt)  # type: ignore[arg-type]
    return caught.value.problems


def only_problem_of(text: str, fmt: str) -> RuleProblem:
    problems = problems_of(text, fmt)
    assert len(problems) == 1, problems
    return problems[0]


def only_problem(text: str) -> RuleProblem:
    return only_problem_of(text, "toml")


def referral(**data: object) -> Event:
    return Event("e1", "referral_decision_made", "C-1", local("2026-03-02"), data=data)


# Loading valid rulesets


def test_a_valid_rule_loads_with_every_field_parsed() -> None:
    rule = load_ruleset(VISIT_RULE).rules[0]

    assert rule.id == "home-visit"
    assert rule.starts_on == (Matcher("referral_received"),)
    assert rule.due == Duration(5, "working_days")
    assert rule.met_by == (Matcher("child_visited"),)
    assert rule.cancelled_by == (
        Matcher("case_closed"),
        Matcher("referral_decision_made", {"outcome": ("early_help", "no_further_action")}),
    )
    assert rule.warn_before == Duration(1, "working_days")
    assert rule.escalate_after == (Duration(2, "working_days"), Duration(5, "working_days"))
    assert rule.restart == "parallel"
    assert rule.repeat == ()


def test_a_ruleset_without_a_calendar_counts_in_england_and_london_time() -> None:
    calendar = load_ruleset(VISIT_RULE).calendar

    assert calendar.region == "england-and-wales"
    assert calendar.timezone.key == "Europe/London"


def test_calendar_closures_become_non_working_days() -> None:
    text = '[calendar]\nregion = "england-and-wales"\nclosures = ["2026-12-24"]\n\n' + VISIT_RULE

    calendar = load_ruleset(text).calendar

    assert not calendar.is_working_day(date(2026, 12, 24))
    assert calendar.is_working_day(date(2026, 12, 23))


def test_due_from_data_names_the_data_key() -> None:
    text = VISIT_RULE.replace('due = "5 working days"', 'due = "from:data.due_at"')

    rule = load_ruleset(text).rules[0]

    assert rule.due is None
    assert rule.due_from_data == "due_at"


def test_counts_from_names_the_events_a_duration_may_count_from() -> None:
    text = VISIT_RULE + 'counts_from = ["strategy_discussion_held"]\n'

    rule = load_ruleset(text).rules[0]

    assert rule.counts_from == (Matcher("strategy_discussion_held"),)
    assert rule.to_json()["counts_from"] == ["strategy_discussion_held"]


def test_counts_from_needs_a_duration_to_count() -> None:
    text = VISIT_RULE.replace('due = "5 working days"', 'due = "from:data.due_at"')
    text += 'counts_from = ["strategy_discussion_held"]\n'

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/counts_from"
    assert problem.line == line_of(text, "counts_from")


LATER = (
    'repeat = ["6 weeks"]\n'
    'later_repeat = {after = "12 months", every = "3 months", '
    'started_by = [{type = "placement_started", where = {long_term = true}}]}\n'
)


def test_later_repeat_reads_its_interval_and_the_chains_it_applies_to() -> None:
    rule = load_ruleset(VISIT_RULE + LATER).rules[0]

    assert rule.later_repeat is not None
    assert (rule.later_repeat.after, rule.later_repeat.every) == (
        Duration(12, "months"),
        Duration(3, "months"),
    )
    long_term = Event(
        "p", "placement_started", "C-1", local("2026-03-02"), data={"long_term": True}
    )
    assert rule.later_repeat.applies_to(long_term)
    assert not rule.later_repeat.applies_to(replace(long_term, data={}))


def test_later_repeat_without_started_by_applies_to_every_chain() -> None:
    text = (
        VISIT_RULE
        + 'repeat = ["6 weeks"]\nlater_repeat = {after = "1 month", every = "2 months"}\n'
    )

    later = load_ruleset(text).rules[0].later_repeat

    assert later is not None
    assert later.applies_to(referral())


def test_later_repeat_needs_the_repeat_it_replaces() -> None:
    text = VISIT_RULE + LATER.split("\n", 1)[1]

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/later_repeat"
    assert problem.line == line_of(text, "later_repeat")


def test_later_repeat_without_every_says_it_is_required() -> None:
    text = VISIT_RULE + 'repeat = ["6 weeks"]\nlater_repeat = {after = "12 months"}\n'

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/later_repeat/every"
    assert problem.detail.startswith("rule 'home-visit', later_repeat/every: is required")


def test_an_unknown_field_in_later_repeat_is_a_problem() -> None:
    text = LATER.replace("every =", "evry =")

    problems = problems_of(VISIT_RULE + text)

    assert {p.pointer for p in problems} == {
        "/rules/0/later_repeat/evry",
        "/rules/0/later_repeat/every",
    }


def test_a_where_with_a_single_value_accepts_that_value_only() -> None:
    text = VISIT_RULE.replace('["early_help", "no_further_action"]', '"early_help"')

    matcher = load_ruleset(text).rules[0].cancelled_by[1]

    assert matcher.matches(referral(outcome="early_help"))
    assert not matcher.matches(referral(outcome="no_further_action"))


def test_a_where_filter_rejects_events_lacking_the_data_key() -> None:
    matcher = Matcher("referral_decision_made", {"outcome": ("early_help",)})

    assert not matcher.matches(referral())


def test_a_matcher_never_matches_another_event_type() -> None:
    assert not Matcher("case_closed").matches(referral(outcome="early_help"))


def test_declared_event_types_can_be_used_in_rules() -> None:
    text = 'event_types = ["family_meeting_held"]\n\n' + VISIT_RULE.replace(
        'met_by = ["child_visited"]', 'met_by = ["family_meeting_held"]'
    )

    ruleset = load_ruleset(text)

    assert ruleset.rules[0].met_by == (Matcher("family_meeting_held"),)
    assert "family_meeting_held" in ruleset.known_event_types
    assert "referral_received" in ruleset.known_event_types


def test_a_json_ruleset_loads_like_its_toml_twin() -> None:
    toml_ruleset = load_ruleset(VISIT_RULE)
    as_json = json.dumps(toml_ruleset.to_json())

    json_ruleset = load_ruleset(as_json, format="json")

    assert json_ruleset.rules == toml_ruleset.rules
    assert json_ruleset.calendar == toml_ruleset.calendar


@pytest.mark.parametrize("name", BUILTIN_RULESETS)
def test_builtin_rulesets_survive_a_round_trip_through_their_json(name: str) -> None:
    builtin = builtin_ruleset(name)

    reloaded = load_ruleset(json.dumps(builtin.to_json()), format="json")

    assert reloaded.id == name
    assert reloaded.rules == builtin.rules
    assert reloaded.calendar == builtin.calendar


def test_an_unknown_builtin_ruleset_name_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        builtin_ruleset_text("scotland-children")


# Problems: each names the rule pointer and the TOML line


def test_an_unknown_rule_field_is_reported_at_its_line() -> None:
    text = VISIT_RULE + 'colour = "red"\n'

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/colour"
    assert problem.line == line_of(text, "colour")
    assert "unknown field" in problem.detail


def test_a_bad_duration_is_reported_at_its_line() -> None:
    text = VISIT_RULE.replace('due = "5 working days"', 'due = "3 fortnights"')

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/due"
    assert problem.line == line_of(text, "3 fortnights")
    assert "3 fortnights" in problem.detail


@pytest.mark.parametrize(
    ("field", "too_long"),
    [
        ("due", "100000 months"),
        ("warn_before", "2611 working days"),
        ("escalate_after", ["2 working days", "2000000 working days"]),
        ("repeat", ["6 weeks", "521 weeks"]),
    ],
)
def test_a_duration_longer_than_about_ten_years_is_refused_naming_the_rule(
    field: str, too_long: object
) -> None:
    text = json.dumps(json_visit_rule(**{field: too_long}), indent=2)

    problem = only_problem_of(text, fmt="json")

    in_list = isinstance(too_long, list)
    written = too_long[1] if isinstance(too_long, list) else too_long
    assert problem.pointer == f"/rules/0/{field}" + ("/1" if in_list else "")
    assert problem.rule_id == "home-visit"
    assert problem.detail.startswith(f"rule 'home-visit', {field}")
    assert f"{written} is too long" in problem.detail
    assert problem.line == line_of(text, f'"{written}"')


def test_a_bad_duration_inside_a_list_points_at_its_index() -> None:
    text = VISIT_RULE.replace('"5 working days"]', '"soon"]')

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/escalate_after/1"
    assert problem.line == line_of(text, "escalate_after")


def test_a_duration_that_is_not_a_string_is_a_problem() -> None:
    problem = only_problem(VISIT_RULE.replace('due = "5 working days"', "due = 5"))

    assert problem.pointer == "/rules/0/due"


def test_an_unknown_event_type_is_reported_with_how_to_declare_it() -> None:
    text = VISIT_RULE.replace('met_by = ["child_visited"]', 'met_by = ["child_visited", "hug"]')

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/met_by/1"
    assert problem.line == line_of(text, "met_by")
    assert "'hug'" in problem.detail
    assert "event_types" in problem.detail


def test_an_unknown_event_type_inside_a_where_matcher_points_at_the_matcher() -> None:
    text = VISIT_RULE.replace('{type = "referral_decision_made"', '{type = "decision"')

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/cancelled_by/1"
    assert problem.line == line_of(text, "cancelled_by")


def test_a_duplicate_rule_id_is_reported_on_the_second_rule() -> None:
    text = VISIT_RULE + "\n" + VISIT_RULE

    problem = only_problem(text)

    assert problem.pointer == "/rules/1/id"
    assert problem.line == line_of(text, 'id = "home-visit"', occurrence=2)
    assert "duplicate" in problem.detail


def test_a_rule_without_starts_on_is_reported_at_its_header() -> None:
    text = DECISION_RULE + "\n" + VISIT_RULE.replace('starts_on = ["referral_received"]\n', "")

    problem = only_problem(text)

    assert problem.pointer == "/rules/1/starts_on"
    assert problem.line == line_of(text, "[[rules]]", occurrence=2)


def test_an_empty_met_by_is_a_problem() -> None:
    problem = only_problem(VISIT_RULE.replace('met_by = ["child_visited"]', "met_by = []"))

    assert problem.pointer == "/rules/0/met_by"


def test_a_missing_name_is_a_problem() -> None:
    problem = only_problem(VISIT_RULE.replace('name = "Home visit within 5 working days"\n', ""))

    assert problem.pointer == "/rules/0/name"


def test_an_unknown_restart_policy_is_a_problem() -> None:
    text = VISIT_RULE + 'restart = "sometimes"\n'

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/restart"
    assert problem.line == line_of(text, "restart")


def test_scheduled_by_without_schedule_before_is_a_problem() -> None:
    problem = only_problem(VISIT_RULE + 'scheduled_by = ["review_scheduled"]\n')

    assert problem.pointer == "/rules/0/scheduled_by"


def test_an_unknown_event_type_in_scheduled_by_is_reported_once() -> None:
    text = VISIT_RULE + 'scheduled_by = ["booked"]\nschedule_before = "5 working days"\n'

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/scheduled_by/0"


def test_an_invalid_rule_id_is_a_problem() -> None:
    problem = only_problem(VISIT_RULE.replace('id = "home-visit"', 'id = "Home Visit"'))

    assert problem.pointer == "/rules/0/id"


def test_a_ruleset_without_rules_is_a_problem() -> None:
    problem = only_problem('[calendar]\nregion = "england-and-wales"\n')

    assert problem.pointer == "/rules"


def test_an_unknown_top_level_field_is_reported_at_its_line() -> None:
    text = 'colour = "red"\n\n' + VISIT_RULE

    problem = only_problem(text)

    assert problem.pointer == "/colour"
    assert problem.line == 1


def test_an_unknown_region_is_reported_at_its_line() -> None:
    text = '[calendar]\ntimezone = "Europe/London"\nregion = "mars"\n\n' + VISIT_RULE

    problem = only_problem(text)

    assert problem.pointer == "/calendar/region"
    assert problem.line == line_of(text, "mars")


def test_an_unknown_timezone_is_reported_at_its_line() -> None:
    text = '[calendar]\ntimezone = "Europe/Atlantis"\n\n' + VISIT_RULE

    problem = only_problem(text)

    assert problem.pointer == "/calendar/timezone"
    assert problem.line == line_of(text, "Atlantis")


def test_an_unknown_region_and_an_unknown_timezone_are_both_reported() -> None:
    text = '[calendar]\nregion = "mars"\ntimezone = "Europe/Atlantis"\n\n' + VISIT_RULE

    problems = problems_of(text)

    assert {p.pointer for p in problems} == {"/calendar/region", "/calendar/timezone"}


def test_closures_that_are_not_a_list_are_one_problem() -> None:
    text = '[calendar]\nclosures = "2026-12-24"\n\n' + VISIT_RULE

    problem = only_problem(text)

    assert problem.pointer == "/calendar/closures"
    assert problem.line == line_of(text, "closures")


def test_a_closure_that_is_not_a_date_points_at_its_index() -> None:
    text = '[calendar]\nclosures = ["2026-12-24", "Christmas"]\n\n' + VISIT_RULE

    problem = only_problem(text)

    assert problem.pointer == "/calendar/closures/1"


def test_an_inline_calendar_table_problem_has_a_line() -> None:
    text = 'calendar = "england"\n\n' + VISIT_RULE

    problem = only_problem(text)

    assert problem.pointer == "/calendar"
    assert problem.line == 1


def test_rule_headers_with_spaces_and_comments_still_locate_problems() -> None:
    text = (DECISION_RULE + "\n" + VISIT_RULE).replace(
        "[[rules]]", "[[ rules ]]  # a rule", 2
    ) + 'colour = "red"\n'

    problem = only_problem(text)

    assert problem.pointer == "/rules/1/colour"
    assert problem.line == line_of(text, "colour")


def test_invalid_toml_syntax_is_reported_with_its_line() -> None:
    text = VISIT_RULE.replace('due = "5 working days"', "due = 5 working days")

    problem = only_problem(text)

    assert problem.line == line_of(text, "due = 5 working days")
    assert "TOML" in problem.detail


def test_invalid_json_is_reported_with_its_line() -> None:
    problems = problems_of('{\n  "rules": [\n    {"id": "a",}\n  ]\n}', fmt="json")

    assert len(problems) == 1
    assert problems[0].line == 3


def test_a_json_document_that_is_not_an_object_is_a_problem() -> None:
    assert problems_of("[]", fmt="json")[0].pointer == ""


def json_visit_rule(**changes: object) -> dict[str, object]:
    """VISIT_RULE as a JSON document, with fields changed (a None value removes the field)."""
    doc = load_ruleset(VISIT_RULE).to_json()
    rule: dict[str, object] = doc["rules"][0]  # type: ignore[index]
    for key, value in changes.items():
        if value is None:
            del rule[key]
        else:
            rule[key] = value
    return doc


def test_json_problems_are_located_at_the_line_of_their_key() -> None:
    text = json.dumps(json_visit_rule(due="soon"), indent=2)

    problems = problems_of(text, fmt="json")

    assert [(p.pointer, p.line) for p in problems] == [("/rules/0/due", line_of(text, '"soon"'))]


def test_a_json_problem_in_a_list_is_located_at_its_item() -> None:
    text = json.dumps(json_visit_rule(escalate_after=["2 working days", "soon"]), indent=2)

    problem = only_problem_of(text, fmt="json")

    assert problem.pointer == "/rules/0/escalate_after/1"
    assert problem.line == line_of(text, '"soon"')


def test_a_json_field_that_is_missing_is_located_where_its_rule_opens() -> None:
    second = json_visit_rule(id="other-visit", due=None)["rules"]
    doc = {"rules": [*json_visit_rule()["rules"], *second]}  # type: ignore[misc]
    text = json.dumps(doc, indent=2)

    problem = only_problem_of(text, fmt="json")

    assert problem.pointer == "/rules/1/due"
    # json.dumps puts the rule's opening brace on the line before its first key.
    assert problem.line == line_of(text, '"other-visit"') - 1


def test_a_json_problem_on_one_line_is_on_line_1() -> None:
    problem = only_problem_of(json.dumps(json_visit_rule(due="soon")), fmt="json")

    assert problem.line == 1


def test_a_missing_due_is_required_and_names_its_rule_in_toml() -> None:
    text = VISIT_RULE.replace('due = "5 working days"\n', "")

    problem = only_problem(text)

    assert problem.pointer == "/rules/0/due"
    assert problem.rule_id == "home-visit"
    assert problem.detail.startswith("rule 'home-visit', due: is required")
    assert problem.line == line_of(text, "[[rules]]")


def test_a_missing_due_is_required_and_names_its_rule_in_json() -> None:
    problem = only_problem_of(json.dumps(json_visit_rule(due=None), indent=2), fmt="json")

    assert problem.pointer == "/rules/0/due"
    assert problem.rule_id == "home-visit"
    assert problem.detail.startswith("rule 'home-visit', due: is required")


@pytest.mark.parametrize("missing", ["name", "source", "starts_on", "met_by"])
def test_each_missing_required_field_is_required(missing: str) -> None:
    problem = only_problem_of(json.dumps(json_visit_rule(**{missing: None})), fmt="json")

    assert problem.pointer == f"/rules/0/{missing}"
    assert problem.detail.startswith(f"rule 'home-visit', {missing}: is required")


def test_a_field_that_is_present_but_wrong_is_not_said_to_be_missing() -> None:
    problem = only_problem(VISIT_RULE.replace('due = "5 working days"', "due = 5"))

    assert "is required" not in problem.detail
    assert problem.detail.startswith("rule 'home-visit', due: must be a duration")


def test_every_problem_in_a_rule_names_that_rule() -> None:
    text = (
        DECISION_RULE.replace('due = "1 working day"', 'due = "soon"')
        + "\n"
        + VISIT_RULE.replace('met_by = ["child_visited"]', 'met_by = ["hug"]')
        + 'colour = "red"\n'
    )

    problems = problems_of(text)

    assert sorted((p.pointer, p.rule_id, p.detail.split(":")[0]) for p in problems) == [
        ("/rules/0/due", "quick-decision", "rule 'quick-decision', due"),
        ("/rules/1/colour", "home-visit", "rule 'home-visit', colour"),
        ("/rules/1/met_by/0", "home-visit", "rule 'home-visit', met_by/0"),
    ]


def test_a_rule_without_an_id_is_named_by_its_place() -> None:
    text = DECISION_RULE + "\n" + VISIT_RULE.replace('id = "home-visit"\n', "")

    problem = only_problem(text)

    assert problem.pointer == "/rules/1/id"
    assert problem.rule_id is None
    assert problem.detail == "rule #2 (no id), id: is required"


def test_a_rule_with_a_malformed_id_is_named_by_the_id_as_written() -> None:
    problem = only_problem(VISIT_RULE.replace('id = "home-visit"', 'id = "Home Visit"'))

    assert problem.rule_id == "Home Visit"
    assert problem.detail.startswith("rule 'Home Visit', id: must be")


def test_problems_outside_the_rules_name_no_rule() -> None:
    problem = only_problem('colour = "red"\n\n' + VISIT_RULE)

    assert problem.rule_id is None
    assert not problem.detail.startswith("rule")


def test_a_ruleset_without_a_rules_list_says_it_is_required() -> None:
    problem = only_problem_of('{"calendar": {}}', fmt="json")

    assert (problem.pointer, problem.line) == ("/rules", 1)
    assert problem.detail.startswith("is required")


def test_every_problem_in_a_ruleset_is_reported_at_once() -> None:
    text = (
        VISIT_RULE.replace('due = "5 working days"', 'due = "soon"')
        + 'colour = "red"\n\n'
        + DECISION_RULE.replace('met_by = ["referral_decision_made"]', 'met_by = ["verdict"]')
        + "\n"
        + VISIT_RULE
    )

    problems = problems_of(text)

    assert {(p.pointer, p.line) for p in problems} == {
        ("/rules/0/colour", line_of(text, "colour")),
        ("/rules/0/due", line_of(text, '"soon"')),
        ("/rules/1/met_by/0", line_of(text, "verdict")),
        ("/rules/2/id", line_of(text, 'id = "home-visit"', occurrence=2)),
    }


def test_the_invalid_ruleset_message_lists_every_pointer() -> None:
    text = VISIT_RULE.replace('due = "5 working days"', 'due = "soon"') + 'colour = "red"\n'

    with pytest.raises(RulesetInvalid) as caught:
        load_ruleset(text)

    assert "/rules/0/due" in str(caught.value)
    assert "/rules/0/colour" in str(caught.value)
