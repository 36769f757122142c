"""User-facing errors: one line each, whatever the message held, and one base class to catch."""

from __future__ import annotations

import pytest

from textedit import errors
from textedit.errors import SpecError, TexteditError, one_line


def test_one_line_escapes_every_control_character_and_keeps_the_rest():
    assert one_line("edits[0].prompt: 'a\nb'\x00\t") == "edits[0].prompt: 'a\\nb'\\x00\\t"
    assert one_line("Beyoncé → 北京, λ = 3") == "Beyoncé → 北京, λ = 3"  # printable text stays as it is


def test_an_error_is_one_line_made_from_any_message():
    assert str(SpecError("field 'a\nb': unknown")) == "field 'a\\nb': unknown"
    assert str(TexteditError(42)) == "42" and str(TexteditError()) == ""


def test_every_error_class_is_a_textedit_error_the_cli_reports_in_one_line():
    classes = [value for value in vars(errors).values() if isinstance(value, type) and issubclass(value, Exception)]
    assert len(classes) >= 8
    for cls in classes:
        assert issubclass(cls, TexteditError)
        with pytest.raises(TexteditError, match=r"^bad\\r$"):
            raise cls("bad\r")


def test_quote_cuts_user_text_to_a_readable_length_and_says_how_long_it_was():
    assert errors.quote("the mascot of acme") == "the mascot of acme"
    quoted = errors.quote("word " * 20_000)
    assert quoted.startswith("word word") and quoted.endswith("… (100,000 characters)")
    assert len(quoted) < errors.QUOTED_CHARACTERS + 30


def test_a_message_that_quoted_too_much_keeps_its_beginning_and_end_on_a_readable_line():
    message = str(SpecError("spec.json: edits[0].prompt '" + "x" * 100_000 + "' is edited twice"))
    assert len(message) < errors.LONGEST_MESSAGE + 40
    assert message.startswith("spec.json: edits[0].prompt 'xxx") and message.endswith("' is edited twice")
    assert "characters cut" in message
