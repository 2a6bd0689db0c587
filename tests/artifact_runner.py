"""Runs inside the isolated interpreter of test_artifacts.py: imports a built handler as Lambda would, and invokes it.

Started as `python -I -S artifact_runner.py TASK_ROOT OPT_DIR EVENTS_JSON OUTPUT_JSON`: no site-packages, no
PYTHONPATH, not even this file's directory on sys.path, so only the standard library and the two directories
below can be imported. Standard library only, on purpose.

sys.path as the Lambda Python runtime sets it: the task root (the function's artifact), then the layer's
/opt/python/lib/pythonX.Y/site-packages and /opt/python. The Lambda runtime's own directory (/var/runtime, with
its boto3) has no stand-in: the layer ships boto3 and botocore itself (docs/operations.md).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import sysconfig
import traceback


class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name = "artifact-test"
    function_version = "1"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:artifact-test:live"
    aws_request_id = "artifact-test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def foreign_modules(allowed: list[str]) -> list[str]:
    """Modules loaded from anywhere but the allowed directories and the standard library (site-packages excluded)."""
    stdlib = {os.path.realpath(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")}
    found = []
    for name, module in sorted(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.realpath(path)
        if any(path.startswith(root + os.sep) for root in allowed):
            continue
        if any(path.startswith(root + os.sep) for root in stdlib) and "site-packages" not in path.split(os.sep):
            continue
        found.append(f"{name}: {path}")
    return found


def main() -> int:
    task_root, opt_dir, events_path, output_path = (os.path.realpath(arg) for arg in sys.argv[1:5])
    layer = os.path.join(opt_dir, "python")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    sys.path[:0] = [task_root, os.path.join(layer, "lib", version, "site-packages"), layer]
    with open(events_path, encoding="utf-8") as handle:
        events = json.load(handle)
    results: dict[str, object] = {"sys_path": sys.path}
    try:
        module = importlib.import_module(os.environ.get("HANDLER_MODULE", "app"))
        handler = getattr(module, os.environ.get("HANDLER_FUNCTION", "lambda_handler"))
        results["responses"] = [handler(event, LambdaContext()) for event in events]
    except BaseException:  # noqa: BLE001 - whatever the import or the handler raised, the test reports it
        results["error"] = traceback.format_exc()
    results["handler_file"] = getattr(sys.modules.get("app"), "__file__", None)
    results["foreign_modules"] = foreign_modules([task_root, opt_dir, os.path.dirname(os.path.realpath(__file__))])
    with open(output_path, "w", encoding="utf-8") as handle:
        json.dump(results, handle, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
