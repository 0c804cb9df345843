"""The proxy's Lambda zip: only the proxy and the pure core it imports, byte-reproducible.

boto3 comes with the Lambda runtime, so the zip holds no dependency. Entries are sorted,
carry a fixed timestamp and fixed permissions, and are compressed at a fixed level: the
same source gives the same bytes whatever the files' times or the checkout's umask, so
the zip's hash names its S3 key and an unchanged deploy changes nothing.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from bedrock_billing.core.errors import AwsError, BillingError

PACKAGE = "bedrock_billing"
# The wrapper script Lambda runs instead of its Python bootstrap (AWS_LAMBDA_EXEC_WRAPPER):
# it starts the proxy's streaming Runtime-API loop (proxy/streaming.py).
STREAM_BOOTSTRAP_NAME = "stream_bootstrap"
STREAM_BOOTSTRAP = f"{PACKAGE}/proxy/{STREAM_BOOTSTRAP_NAME}"
# (directory under the package, glob, recursive) that go into the zip; nothing else does
# (cli, stores, services, sandbox and deploy stay out).
INCLUDE = (
    ("", "__init__.py", False),
    ("proxy", "*.py", True),
    ("proxy", STREAM_BOOTSTRAP_NAME, False),
    ("core", "*.py", True),
    ("proxy/static", "*.*", False),  # the customer portal's page, script and style
    ("notifier", "*.py", True),  # the notifier function runs from the same zip
    ("data", "*.json", False),
)
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
FILE_MODE = 0o100644  # regular file, rw-r--r--
EXEC_MODE = 0o100755  # the wrapper script: Lambda executes it


@dataclass(frozen=True)
class Artifact:
    data: bytes
    sha256: str
    files: tuple[str, ...]

    def key(self, stack_name: str) -> str:
        return f"{stack_name}/proxy-{self.sha256[:32]}.zip"


def package_root() -> Path:
    """The directory holding the installed ``bedrock_billing`` package."""
    return Path(__file__).resolve().parents[2]


def zip_members(root: Path | None = None) -> list[str]:
    """The archive names (POSIX, sorted) of the files the zip holds."""
    root = root or package_root()
    base = root / PACKAGE
    if not (base / "proxy").is_dir():
        raise BillingError(f"the proxy package is missing: {base / 'proxy'} does not exist")
    names: set[str] = set()
    for sub, pattern, recursive in INCLUDE:
        folder = base / sub if sub else base
        if not folder.is_dir():
            continue
        found = folder.rglob(pattern) if recursive else folder.glob(pattern)
        for path in found:
            if "__pycache__" in path.parts or not path.is_file():
                continue
            names.add(path.relative_to(root).as_posix())
    return sorted(names)


def build_zip(root: Path | None = None) -> Artifact:
    root = root or package_root()
    names = zip_members(root)
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            mode = EXEC_MODE if name == STREAM_BOOTSTRAP else FILE_MODE
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so the mode above is read as such
            archive.writestr(info, (root / name).read_bytes(), compresslevel=9)
    data = buffer.getvalue()
    return Artifact(data=data, sha256=hashlib.sha256(data).hexdigest(), files=tuple(names))


def artifacts_bucket_name(account_id: str, region: str) -> str:
    return f"bedrock-billing-artifacts-{account_id}-{region}"


def ensure_artifacts_bucket(s3, name: str, region: str) -> bool:
    """Create the private, encrypted bucket for deploy artifacts unless it exists.

    It lives outside the stack: the code must be in S3 before the stack can create the
    function. Returns True when it was created.
    """
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=name)
        return False
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise AwsError(f"cannot use the artifacts bucket {name}: {code}") from None
    kwargs: dict = {"Bucket": name}
    if region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    return True


def upload_artifact(s3, bucket: str, key: str, artifact: Artifact) -> bool:
    """Upload the zip unless the same content is already there. True when uploaded."""
    from botocore.exceptions import ClientError

    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=artifact.data,
        ContentType="application/zip",
        ChecksumSHA256=_b64_sha256(artifact.data),
    )
    return True


def _b64_sha256(data: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(data).digest()).decode()
