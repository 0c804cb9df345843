"""``python -m bedrock_billing.fakebedrock``: the fake Bedrock alone, until interrupted."""

from .server import main

raise SystemExit(main())
