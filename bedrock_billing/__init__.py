"""bedrock-billing: customer tokens, limits, exact usage and invoices for an AWS Bedrock proxy."""

__version__ = "0.1.0"
