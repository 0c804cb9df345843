"""The local sandbox: moto's server as the AWS endpoint, the fake Bedrock endpoint, and the
real proxy handler behind a local HTTP server and a local HTTPS server, all on loopback,
all in this process.

    with Sandbox(port=0, tls_port=0) as sb:
        settings = sb.settings()            # services talk to moto through these
        urllib.request.urlopen(sb.proxy_url, ...)
        boto3.client("bedrock-runtime", endpoint_url=sb.bedrock_endpoint_url,
                     verify=sb.ca_bundle)   # with AWS_BEARER_TOKEN_BEDROCK=<token>

The HTTPS server is there because botocore (1.44 and later) refuses to send a Bearer token
to a plain ``http://`` endpoint. Its certificate is made at start, signed by a CA made with
it, both written to the sandbox's state folder (``ca_bundle`` is the CA's PEM file).

Resources are named as a deployment names them (tables ``{prefix}-{stage}-*``, the log
bucket ``{prefix}-{stage}-logs-{account}-{region}`` with moto's account id), so commands
run from another shell with only ``--endpoint-url`` find them. The log bucket carries the
sandbox marker: ``usage --source athena`` and ``reconcile`` then run the same SQL in the
local engine (DuckDB) over the same ``dt=`` files.

moto is imported on start, not at import time: it is in the ``[sandbox]`` extra.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..awsclient import DEFAULT_LOCAL_REGION, DUMMY_CREDENTIALS
from ..core.errors import BillingError, InvalidInput
from ..core.schema import DEFAULT_PREFIX, DEFAULT_STAGE, LOG_PREFIX, log_bucket_name
from ..core.timeutil import Clock, system_clock
from ..settings import Settings
from .netutil import loopback_host

MOTO_ACCOUNT_ID = "123456789012"  # moto's default account: what STS answers in the sandbox
SANDBOX_AUTH_CACHE_TTL = "1"  # seconds: a limit changed from another shell bites at once
_PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BillingError(
            "the sandbox needs moto's server and DuckDB: pip install 'bedrock-billing[sandbox]'"
        ) from None


class Sandbox:
    """Start with :meth:`start` (or ``with``), stop with :meth:`stop`; stop is idempotent
    and closes every socket the sandbox opened.

    ``port`` is the proxy's HTTP port, ``tls_port`` its HTTPS port (0: a free one); moto
    and the fake Bedrock take free ports. ``state_dir`` holds the certificates (default: a
    temporary folder, removed at stop; a given folder is kept).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_port: int = 0,
        state_dir: str | os.PathLike | None = None,
        stage: str = DEFAULT_STAGE,
        table_prefix: str = DEFAULT_PREFIX,
        region: str | None = None,
        seed: int = 0,
        clock: Clock = system_clock,
    ):
        self.host = loopback_host(host)
        self.requested_port = port
        self.requested_tls_port = tls_port
        self.requested_state_dir = state_dir
        self.state_dir: Path | None = None
        self.tls: Any = None  # localhttp.tls.TLSFiles, once started
        self.stage = stage
        self.table_prefix = table_prefix
        self.region = region or DEFAULT_LOCAL_REGION
        self.seed = seed
        self.clock = clock
        self.account_id = MOTO_ACCOUNT_ID  # confirmed by STS at start
        self.log_bucket = log_bucket_name(stage, table_prefix, self.account_id, self.region)
        self.log_prefix = LOG_PREFIX
        self.invocation_log_prefix = ""
        self.moto: Any = None
        self.fake: Any = None
        self.proxy_server: Any = None
        self.tls_proxy_server: Any = None
        self.log_sink: Any = None
        self.notifier_pump: Any = None
        self.alerts_topic_arn: str | None = None
        self._session: Any = None
        self._clients: list[Any] = []
        self._saved_env: dict[str, str] = {}

    # ---- where things are

    @property
    def aws_endpoint_url(self) -> str:
        host, port = self.moto.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def bedrock_url(self) -> str:
        return self.fake.url

    @property
    def proxy_base_url(self) -> str:
        return self.proxy_server.url

    @property
    def proxy_url(self) -> str:
        """Where to POST: ``/{stage}/bedrock``, as the deployed REST API's stage names it."""
        return f"{self.proxy_server.url}/{self.stage}/bedrock"

    @property
    def bedrock_endpoint_url(self) -> str:
        """The HTTPS base an SDK takes as ``endpoint_url`` (Bedrock Runtime's own paths)."""
        return self.tls_proxy_server.url

    @property
    def ca_bundle(self) -> str:
        """The PEM file of the CA that signed the HTTPS server's certificate."""
        return str(self.tls.ca_bundle)

    def info(self) -> dict[str, Any]:
        """The documented JSON line of ``bedrock-billing sandbox --output json``."""
        return {
            "proxy_url": self.proxy_url,
            "converse_url": self.proxy_url + "/converse",
            "bedrock_endpoint_url": self.bedrock_endpoint_url,
            "ca_bundle": self.ca_bundle,
            # The anthropic SDK adds /v1/messages itself; the openai SDK wants the /v1.
            "anthropic_base_url": f"{self.proxy_server.url}/{self.stage}",
            "openai_base_url": f"{self.proxy_server.url}/{self.stage}/v1",
            "portal_url": f"{self.proxy_server.url}/{self.stage}/portal",
            "aws_endpoint_url": self.aws_endpoint_url,
            "bedrock_url": self.bedrock_url,
            "region": self.region,
            "stage": self.stage,
            "table_prefix": self.table_prefix,
            "tables": self.settings().tables.as_dict(),
            "log_bucket": self.log_bucket,
            "log_uri": f"s3://{self.log_bucket}/{self.log_prefix}",
            "account_id": self.account_id,
            # The notifier's SNS topic: BEDROCK_BILLING_ALERTS_TOPIC_ARN for other shells'
            # commands (invoice --finalize, anomalies --notify) to publish there too.
            "alerts_topic_arn": self.alerts_topic_arn,
            "pid": os.getpid(),
        }

    def listening_addresses(self) -> list[tuple[str, int]]:
        """The (host, port) of every listening socket the sandbox opened."""
        out = []
        if self.moto is not None:
            out.append(tuple(self.moto.get_host_and_port()))
        if self.fake is not None and self.fake._server is not None:
            out.append(tuple(self.fake._server.server_address[:2]))
        for server in (self.proxy_server, self.tls_proxy_server):
            if server is not None and server._server is not None:
                out.append(tuple(server._server.server_address[:2]))
        return out

    def settings(self, output: str = "table") -> Settings:
        """Settings for the services, pointed at the sandbox with its dummy credentials."""
        settings = Settings(
            region=self.region,
            endpoint_url=self.aws_endpoint_url,
            output=output,
            stage=self.stage,
            table_prefix=self.table_prefix,
            log_bucket=self.log_bucket,
            log_prefix=self.log_prefix,
            alerts_topic_arn=self.alerts_topic_arn,
        )
        settings._session = self._session
        return settings

    # ---- lifecycle

    def start(self) -> Sandbox:
        if self.moto is not None:
            return self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        _need("moto.server")
        _need("duckdb")  # the local engine: fail now rather than at the first report
        import boto3
        import botocore.session

        from ..fakebedrock import FakeBedrock
        from .motoserver import MotoServer

        # Our own dummy credentials, and no profile: the user's AWS configuration (or the
        # lack of it) plays no part, and nothing can reach a real AWS endpoint.
        core = botocore.session.Session()
        core.set_config_variable("config_file", os.devnull)
        core.set_config_variable("credentials_file", os.devnull)
        # An override in the store itself: a session variable of None would fall through
        # to AWS_PROFILE, and a profile named there need not exist here.
        core.get_component("config_store").set_config_variable("profile", None)
        self._session = boto3.Session(
            botocore_session=core, region_name=self.region, **DUMMY_CREDENTIALS
        )
        # moto's server makes its own boto3 sessions from the environment: a profile named
        # there that does not exist (or no AWS setup at all) must not break it.
        for name in _PROFILE_VARIABLES:
            if name in os.environ:
                self._saved_env[name] = os.environ.pop(name)
        # werkzeug logs every request to stderr at INFO: keep errors only.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto = MotoServer(self.host, 0).start()
        self.fake = FakeBedrock(0, host=self.host, seed=self.seed).start()
        # The account id as the CLI will see it (STS through moto), so the log bucket's name
        # is the one `usage --source athena` derives from the other shell.
        sts = self._client("sts", self.aws_endpoint_url)
        self.account_id = sts.get_caller_identity()["Account"]
        self.log_bucket = log_bucket_name(
            self.stage, self.table_prefix, self.account_id, self.region
        )
        self._create_resources()
        self._log_invocations()
        self._make_certificates()
        self._start_proxy()

    def _make_certificates(self) -> None:
        from ..localhttp.tls import make_tls_files

        if self.requested_state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="bedrock-billing-sandbox-"))
        else:
            self.state_dir = Path(self.requested_state_dir)
        try:
            self.tls = make_tls_files(self.state_dir / "tls")
        except OSError as exc:
            raise BillingError(
                f"cannot write the sandbox's certificates to {self.state_dir}: "
                f"{exc.strerror or exc}"
            ) from None

    def _client(self, service: str, endpoint: str, **config: Any):
        from botocore.config import Config

        client = self._session.client(
            service, endpoint_url=endpoint, config=Config(proxies={}, **config)
        )
        self._clients.append(client)
        return client

    def _create_resources(self) -> None:
        from ..services.customers import init_tables
        from ..stores.logsink import write_sandbox_marker

        init_tables(self.settings())
        s3 = self._client("s3", self.aws_endpoint_url)
        kwargs: dict[str, Any] = {"Bucket": self.log_bucket}
        if self.region != "us-east-1":  # S3 refuses a LocationConstraint of us-east-1
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        s3.create_bucket(**kwargs)
        write_sandbox_marker(s3, self.log_bucket, log_prefix=self.log_prefix, clock=self.clock)
        self._create_notify_resources()

    def _create_notify_resources(self) -> None:
        """The alerts topic and the signing secrets' key, named as the deploy names them."""
        from ..core.alerts import alerts_topic_name, webhook_key_alias
        from ..core.schema import resource_base

        base = resource_base(self.stage, self.table_prefix)
        sns = self._client("sns", self.aws_endpoint_url)
        self.alerts_topic_arn = sns.create_topic(Name=alerts_topic_name(base))["TopicArn"]
        kms = self._client("kms", self.aws_endpoint_url)
        alias = webhook_key_alias(base)
        try:
            kms.describe_key(KeyId=alias)  # moto's state outlives a sandbox in one process
            return
        except kms.exceptions.NotFoundException:
            pass
        key = kms.create_key(Description="bedrock-billing sandbox: webhook signing secrets")
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyMetadata"]["KeyId"])

    def _log_invocations(self) -> None:
        """Bedrock's model invocation logging, as ``deploy --invocation-logs metadata`` sets
        it: the fake writes a record per served call to the log bucket, and moto's Bedrock
        holds the matching configuration (metadata only)."""
        from ..core.invocationlog import INVOCATION_LOG_PREFIX
        from ..deploy.invocation_logging import metadata_only_config
        from ..fakebedrock.invocationlog import InvocationLogger, S3InvocationLog

        s3 = self._client("s3", self.aws_endpoint_url, max_pool_connections=64)
        self.invocation_log_prefix = INVOCATION_LOG_PREFIX
        writer = S3InvocationLog(
            s3, self.log_bucket, INVOCATION_LOG_PREFIX, self.account_id, self.region
        )
        self.fake.invocation_log = InvocationLogger(
            writer, account_id=self.account_id, region=self.region, clock=self.clock
        )
        bedrock = self._client("bedrock", self.aws_endpoint_url)
        bedrock.put_model_invocation_logging_configuration(
            loggingConfig=metadata_only_config(self.log_bucket, INVOCATION_LOG_PREFIX)
        )

    def _start_proxy(self) -> None:
        from ..proxy.config import ENV, ConfigError, ProxyConfig
        from ..proxy.handler import Proxy
        from ..stores.logsink import S3LogSink
        from .proxy_server import ProxyServer

        env = dict(os.environ)
        env.setdefault(ENV + "AUTH_CACHE_TTL", SANDBOX_AUTH_CACHE_TTL)
        try:
            config = ProxyConfig.from_env(env)
        except (ConfigError, ValueError) as exc:
            raise InvalidInput(f"proxy configuration: {exc}") from None
        config = replace(config, tables=self.settings().tables, region=self.region)
        dynamodb = self._client(
            "dynamodb",
            self.aws_endpoint_url,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=64,
        )
        bedrock = self._client(
            "bedrock-runtime",
            self.bedrock_url,
            # SigV4 pinned: with AWS_BEARER_TOKEN_BEDROCK in this process (a test or the
            # demo acting as a customer), botocore would otherwise switch this client to
            # Bearer per request and fail ("Unable to locate authorization token").
            signature_version="v4",
            retries={"total_max_attempts": 1},
            read_timeout=config.bedrock_read_timeout,
            max_pool_connections=64,
        )
        s3 = self._client("s3", self.aws_endpoint_url, max_pool_connections=64)
        self.log_sink = S3LogSink(s3, self.log_bucket, self.log_prefix, clock=self.clock)
        self.notifier_pump = self._notifier_pump()
        sink, pump = self.log_sink, self.notifier_pump

        def log_and_notify(record: dict) -> None:
            sink(record)
            pump.kick()  # the notifier looks at the meter after every request

        proxy = Proxy(
            config,
            dynamodb=dynamodb,
            bedrock_runtime=bedrock,
            clock=self.clock,
            log_sink=log_and_notify,
        )
        self.proxy_server = _listen(
            ProxyServer(proxy, host=self.host, port=self.requested_port), "--port"
        )
        self.tls_proxy_server = _listen(
            ProxyServer(proxy, host=self.host, port=self.requested_tls_port, tls=self.tls),
            "--tls-port",
        )

    def _notifier_pump(self):
        from ..services.notifications import notifier_for
        from .meterstream import MeterStream
        from .notify import NotifierPump

        settings = self.settings()
        stream = MeterStream(self._client("dynamodb", self.aws_endpoint_url), settings.tables.usage)
        return NotifierPump(stream, notifier_for(settings, clock=self.clock)).start()

    def stop(self) -> None:
        """Stop the proxy first (no new lines), flush the log, then the fake and moto."""
        for server in (self.tls_proxy_server, self.proxy_server):
            if server is not None:
                server.stop()
        self.proxy_server = self.tls_proxy_server = None
        pump, self.notifier_pump = self.notifier_pump, None
        if pump is not None:
            pump.stop()
        sink, self.log_sink = self.log_sink, None
        if sink is not None and self.moto is not None:
            try:
                sink.flush()
            except Exception:  # moto is ours and local; nothing to retry into at shutdown
                pass
        fake, self.fake = self.fake, None
        if fake is not None:
            fake.stop()
        for client in self._clients:
            client.close()
        self._clients.clear()
        moto, self.moto = self.moto, None
        if moto is not None:
            moto.stop()  # closes the listening socket too: the port is free at once
        os.environ.update(self._saved_env)
        self._saved_env.clear()
        self.tls = None
        state, self.state_dir = self.state_dir, None
        if state is not None and self.requested_state_dir is None:
            shutil.rmtree(state, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _listen(server, option: str):
    """Start a ProxyServer; a port that is taken is one clear error naming the option."""
    try:
        return server.start()
    except OSError as exc:
        port = server.port
        raise BillingError(
            f"cannot listen on {server.host}:{port}: {exc.strerror or exc}"
            + (f" (pass {option} 0 for a free port)" if port else "")
        ) from None
