"""JSON in: DRF's parser, with two limits no valid request reaches and a hostile one would.

- Nesting at most `MAX_DEPTH` levels: Python's parser recurses, so ~1,000 levels raised a
  RecursionError (a 500); no resource of the API nests more than four.
- Strings (keys and values) that are valid Unicode: JSON may spell a lone surrogate
  (`"\\ud800"`), which parses into a string nothing can encode, so the answer, the
  audit trail or the database failed later (a 500, and a leased `Idempotency-Key`).
Both are a 400 naming the problem, before anything reads the data.
"""
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(_("JSON nested too deeply (at most %(n)d levels).") % {"n": MAX_DEPTH}) from None
        check(data)
        return data


def check(data):
    """Walk the parsed value without recursion; raise ParseError at the first problem."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ParseError(_("JSON nested too deeply (at most %(n)d levels).") % {"n": MAX_DEPTH})
            if isinstance(value, dict):
                for key, item in value.items():
                    _check_text(key)
                    pending.append((item, depth + 1))
            else:
                pending.extend((item, depth + 1) for item in value)


def _check_text(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError(_("The JSON holds a string that is not valid Unicode (a lone surrogate).")) from None
