"""The operator's web console (``bedrock-billing console``): server-rendered pages on
loopback over the same service functions the CLI commands call.

- security.py: the one-time secret, the session cookie, the Host and CSRF checks;
- server.py: the HTTP side (standard library, bedrock_billing.localhttp) and the routing;
- views.py: one function per page or action, each calling ``services/*``;
- charts.py: inline SVG charts; templates/ and static/: the pages, one stylesheet, one
  small script that only enhances (the copy button).

Needs Jinja2 (the ``[console]`` extra); imported only by the ``console`` command.
"""

from __future__ import annotations

from ..core.errors import BillingError


def require_console_dependencies() -> None:
    import importlib.util

    if importlib.util.find_spec("jinja2") is None:
        raise BillingError("the console needs Jinja2: pip install 'bedrock-billing[console]'")
