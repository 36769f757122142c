"""User-facing errors.

Everything a user can get wrong (a path, a spec field, a layer index, a patch for another
model) raises a :class:`TexteditError` subclass whose message is one line naming the
problem. The CLI prints that line and exits non-zero without a traceback; library users
catch the class they care about.
"""


import unicodedata


def one_line(message: str) -> str:
    """``message`` with every control character escaped (``\\n``, ``\\x00``): a field name or
    prompt from a user's file may hold a newline, and the message must stay one line."""
    return "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch).startswith("C")
                   else ch for ch in message)


#: how many characters of a user's text (a prompt, a subject, a field's value) a message quotes
QUOTED_CHARACTERS = 80


def quote(text: object, limit: int = QUOTED_CHARACTERS) -> str:
    """``text`` as a message quotes it: cut to ``limit`` characters with an ellipsis that says
    how long it was (a 100 KB prompt must not make a 100 KB error line)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


#: the longest message kept whole: a longer one quoted some user text whole (a call that should
#: have used :func:`quote`), and keeps its beginning (what and where) and its end (why)
LONGEST_MESSAGE = 600


def _readable(message: str) -> str:
    if len(message) <= LONGEST_MESSAGE:
        return message
    head, tail = 2 * LONGEST_MESSAGE // 3, LONGEST_MESSAGE // 4
    return f"{message[:head]} … ({len(message) - head - tail:,} characters cut) … {message[-tail:]}"


class TexteditError(Exception):
    """Base class: a problem the user can fix, described in one line (made so here) of a
    readable length."""

    def __init__(self, message: object = "", *args):
        super().__init__(_readable(one_line(str(message))), *args)


class SpecError(TexteditError):
    """An edit spec (JSON file or API arguments) is malformed."""


class ModelLoadError(TexteditError):
    """A model reference could not be resolved or loaded."""


class LayerError(TexteditError):
    """A requested layer does not exist in the encoder."""


class SubjectError(TexteditError):
    """A subject string is not found in its prompt."""


class PatchError(TexteditError):
    """A patch is malformed, or does not belong to the model it is applied to."""


class CacheError(TexteditError):
    """A statistics cache file is corrupt or does not match its key."""


class NumericalError(TexteditError):
    """A solve met NaN/Inf or a singular system."""


class WriteError(TexteditError):
    """A file or folder could not be written (a full disk, an I/O error, no permission); what
    was there before is kept (``textedit/io.py``)."""
