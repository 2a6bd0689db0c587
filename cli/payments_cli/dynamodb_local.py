"""Amazon DynamoDB Local (from the npm package amplify-dynamodb-simulator), started with java.

`python -m payments_cli.dynamodb_local [--port 8000] [--data-dir DIR] -- COMMAND…` runs COMMAND
with `--dynamodb-endpoint` pointing at it, then stops it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from payments_cli.template import PROJECT_ROOT

DEFAULT_DIR = PROJECT_ROOT / ".local" / "dynamodb-local"
_JAR_SUBDIR = Path("node_modules") / "amplify-dynamodb-simulator" / "emulator"


def emulator_dir(install_dir: Path | None = None) -> Path:
    base = install_dir or Path(os.environ.get("DYNAMODB_LOCAL_DIR", DEFAULT_DIR))
    return base / _JAR_SUBDIR


def is_installed(install_dir: Path | None = None) -> bool:
    return (emulator_dir(install_dir) / "DynamoDBLocal.jar").exists() and shutil.which("java") is not None


def stop_process(process: subprocess.Popen[Any] | None, timeout: float = 15.0) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it has not exited within `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DynamoDBLocal:
    """One DynamoDB Local process on a loopback port (in memory, or in `data_dir`)."""

    def __init__(self, port: int | None = None, data_dir: Path | None = None, install_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self._dir = emulator_dir(install_dir)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> DynamoDBLocal:
        storage = ["-inMemory"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir.resolve())]
        command = [
            "java",
            "-Xmx512m",
            "-Djava.library.path=./DynamoDBLocal_lib",
            "-jar",
            "DynamoDBLocal.jar",
            "-port",
            str(self.port),
            "-sharedDb",
            *storage,
        ]
        # a fixed command: the machine's java and the jar `make dynamodb-local` installed
        self._process = subprocess.Popen(command, cwd=self._dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"DynamoDB Local exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("DynamoDB Local did not start in time")

    def stop(self) -> None:
        stop_process(self._process)

    def __enter__(self) -> DynamoDBLocal:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _stop_on_terminate(*_: object) -> None:
    """`kill` (SIGTERM) stops DynamoDB Local too, as Ctrl-C does."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--data-dir", type=Path, help="keep the data here (default: in memory)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = [part for part in args.command if part != "--"]
    signal.signal(signal.SIGTERM, _stop_on_terminate)
    if not is_installed():
        print("DynamoDB Local is not installed: run `make dynamodb-local` (needs npm and java)", file=sys.stderr)
        return 2
    with DynamoDBLocal(args.port, args.data_dir) as database:
        print(f"DynamoDB Local on {database.endpoint}", flush=True)
        if not command:
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        try:
            return subprocess.call([*command, "--dynamodb-endpoint", database.endpoint])  # noqa: S603 - the user's command
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
