from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that JSON nested too deeply for Python's decoder is a 400:
    the decoder raises RecursionError, which DRF does not catch (a 500). A body of a few
    kilobytes of "[" is enough."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - the document is nested too deeply.") from exc
