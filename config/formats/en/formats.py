"""Dates for the en interface: ISO 8601 order (see config/formats/__init__.py)."""
from config.formats.common import *  # noqa: F401,F403
from config.formats.common import DATE_INPUT_FORMATS as _ISO_DATES

DATE_INPUT_FORMATS = [*_ISO_DATES, "%m/%d/%Y", "%d/%m/%Y"]
