"""Local HTTP(S) servers on loopback: the machinery the sandbox's proxy server and the fake
Bedrock share (``server``), and the certificates that let them speak HTTPS (``tls``)."""
