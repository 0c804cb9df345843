"""Start-up of the proxy's streaming entry point against today's buffered handler.

Each mechanism is started as a fresh process against a stand-in Runtime API on loopback,
and timed from the process's start to its first ``GET /runtime/invocation/next`` (the
moment Lambda could hand it a request): that covers the interpreter, the imports and the
set-up before serving.

- streaming: ``python -m bedrock_billing.proxy.streaming`` (what the zip's wrapper runs);
- buffered: ``python -m awslambdaric bedrock_billing.proxy.handler.lambda_handler``, the
  Runtime Interface Client AWS's Python runtime is built on, loading today's handler
  (``--ric-path``: a folder holding ``awslambdaric``, e.g. from
  ``pip install --target /tmp/ric awslambdaric``; skipped when absent);
- and, for scale, ``python -c "import bedrock_billing.proxy.handler"`` to its exit.

Run: ``PYTHONPATH=. python bench/bench_streaming_start.py [--runs 15] [--ric-path DIR]``.
Prints medians and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FirstNext:
    """A Runtime API that notes when ``/next`` is first asked for, and answers nothing."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.at = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if not outer.asked.is_set():
                    outer.at = time.perf_counter()
                    outer.asked.set()
                time.sleep(5)  # hold the request: the process is stopped meanwhile

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def time_to_next(cmd: list[str], env: dict) -> float:
    api = FirstNext()
    env = {**env, "AWS_LAMBDA_RUNTIME_API": api.address}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        if not api.asked.wait(30):
            raise RuntimeError(f"{cmd} never asked for an invocation: "
                               f"{proc.stderr.read().decode()[-500:] if proc.poll() else ''}")
        return api.at - started
    finally:
        proc.kill()
        proc.wait()
        api.server.shutdown()
        api.server.server_close()


def time_to_exit(cmd: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--ric-path", default="/tmp/ric_site")
    args = parser.parse_args()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": ROOT,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LAMBDA_TASK_ROOT": ROOT,
    }
    py = sys.executable
    mechanisms = {
        "streaming loop (ours)": ([py, "-m", "bedrock_billing.proxy.streaming"], env),
    }
    if os.path.isdir(os.path.join(args.ric_path, "awslambdaric")):
        ric_env = {**env, "PYTHONPATH": f"{ROOT}:{args.ric_path}"}
        mechanisms["buffered: awslambdaric + handler"] = (
            [py, "-m", "awslambdaric", "bedrock_billing.proxy.handler.lambda_handler"], ric_env
        )
    else:
        print(f"(awslambdaric not found under {args.ric_path}: buffered runtime skipped)")
    results: dict[str, list[float]] = {name: [] for name in mechanisms}
    results["import of the handler, to its exit"] = []
    for _ in range(args.runs):  # interleaved, so all see the same machine
        for name, (cmd, menv) in mechanisms.items():
            results[name].append(time_to_next(cmd, menv))
        results["import of the handler, to its exit"].append(
            time_to_exit([py, "-c", "import bedrock_billing.proxy.handler"], env)
        )
    medians = {name: statistics.median(values) for name, values in results.items()}
    print(f"start-up to the first /runtime/invocation/next, median of {args.runs} runs:")
    for name, value in medians.items():
        print(f"  {name:<36} {value * 1000:7.1f} ms")
    ours = medians["streaming loop (ours)"]
    for name, value in medians.items():
        if name != "streaming loop (ours)":
            print(f"  ratio streaming / {name}: x{ours / value:.2f}")


if __name__ == "__main__":
    main()
