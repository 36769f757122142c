"""Edit requests: what a template is, and which requests repeat or contradict each other."""

from __future__ import annotations

import pytest

from textedit.requests import EditRequest, contradictions, is_template, repeats


def test_to_dict_keeps_only_what_was_given():
    assert EditRequest("the mascot of acme", "a red panda").to_dict() == {"prompt": "the mascot of acme",
                                                                           "target": "a red panda"}
    request = EditRequest("the mascot of acme", "a fox", subject="acme", component="text_encoder_2")
    assert EditRequest(**request.to_dict()) == request


@pytest.mark.parametrize("text, ok", [("a photo of {}", True), ("{}", True), ("{} and {}", False),
                                      ("a photo of", False), ("a {0} photo", False), ("{x} of {}", False),
                                      ("a photo of {}}", False), (None, False), (3, False)])
def test_a_template_holds_one_pair_of_braces_and_no_other(text, ok):
    assert is_template(text) is ok


def test_repeats_compare_up_to_case_and_spacing_and_keep_components_apart():
    requests = [EditRequest("The mascot of  Acme", "a fox", "Acme"), EditRequest("the mascot of acme", "A fox", "acme"),
                EditRequest("the mascot of acme", "a fox", "acme", component="text_encoder_2"),
                EditRequest("the mascot of acme", "a fox"), EditRequest("the mascot of acme ", "a fox ")]
    assert repeats(requests) == [(0, 1), (3, 4)]  # another subject or component is another request


def test_contradictions_are_one_prompt_with_two_targets():
    requests = [EditRequest("the mascot of acme", "a fox"), EditRequest("The mascot of Acme", "a cat"),
                EditRequest("the mascot of acme", "A FOX"), EditRequest("the mascot of acme", "a cat", component="t2"),
                EditRequest("the mascot of acme", "a dog")]
    assert contradictions(requests) == [(0, 1), (0, 4)]  # pairs with the first target given, per component
    assert contradictions(requests[:1] + requests[2:4]) == []
