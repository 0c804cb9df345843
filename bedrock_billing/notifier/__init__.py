"""The notifier: usage alerts and webhook deliveries, fed by the usage table's stream.

Deployed as its own Lambda (``handler.lambda_handler``) from the proxy's zip; imports the
pure core and boto3 only. The CLI's services use the same engine for ``redeliver``.
"""
