#!/usr/bin/env python
"""schemathesis's command line, with one CPython 3.11 bug worked around.

Hypothesis describes each filter lambda by parsing the source file it comes from with
`ast.parse`. On CPython 3.11.7, parsing schemathesis's 5,000-line coverage module deep in
the stack fails with `SystemError: AST constructor recursion depth mismatch` (a CPython
bug, fixed in later 3.11 releases), which aborts schemathesis's coverage phase for an
operation. The description is only a label for reports, so a failure to build it falls
back to a plain one; nothing about what is generated or checked changes.
"""
import sys

from hypothesis.internal import lambda_sources

_describe = lambda_sources._lambda_description


def _lambda_description(*args, **kwargs):
    try:
        return _describe(*args, **kwargs)
    except SystemError:
        return "lambda: <source not parsed>"


lambda_sources._lambda_description = _lambda_description

from schemathesis.cli import schemathesis  # noqa: E402 - after the patch

if __name__ == "__main__":
    sys.argv[0] = "schemathesis"
    sys.exit(schemathesis())
