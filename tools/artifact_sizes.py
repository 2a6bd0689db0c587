"""Print the sizes of what `sam build` produced against Lambda's deployment package limits; exit 1 if one is over.

Usage: python tools/artifact_sizes.py .aws-sam/build

Limits (Lambda quotas): a function and all its layers at most 250 MB unzipped; a .zip uploaded directly at most
50 MB (`sam deploy` uploads through S3, where the zipped limit does not apply, but the unzipped one does).
Sizes are counted as Lambda counts them: bytes of the extracted files, and the deflated .zip that SAM would upload.
"""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

MB = 1024 * 1024
UNZIPPED_LIMIT = 250 * MB
ZIPPED_DIRECT_LIMIT = 50 * MB


def human(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB / 10 else f"{size / 1024:.1f} kB"


def unzipped_size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def zipped_size(directory: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return buffer.tell()


def main(build_dir: str) -> int:
    root = Path(build_dir)
    artifacts = sorted(p for p in root.iterdir() if p.is_dir())
    if not artifacts:
        print(f"{root}: nothing built", file=sys.stderr)
        return 1
    sizes = {p.name: (unzipped_size(p), zipped_size(p)) for p in artifacts}
    layers = [name for name in sizes if (root / name / "python").is_dir()]
    functions = [name for name in sizes if name not in layers]
    failed = False
    print(
        f"{'artifact':<28}{'unzipped':>12}{'zipped':>12}   "
        f"(a .zip uploaded directly: at most {ZIPPED_DIRECT_LIMIT // MB} MB)"
    )
    for name, (raw, packed) in sizes.items():
        verdict = "ok" if packed <= ZIPPED_DIRECT_LIMIT else "OVER"
        failed |= packed > ZIPPED_DIRECT_LIMIT
        print(f"{name:<28}{human(raw):>12}{human(packed):>12}   {verdict}")
    layer_total = sum(sizes[name][0] for name in layers)
    for name in functions:
        total = sizes[name][0] + layer_total
        verdict = "ok" if total <= UNZIPPED_LIMIT else "OVER"
        failed |= total > UNZIPPED_LIMIT
        print(
            f"{name} + {' + '.join(layers)}: {human(total)} unzipped of {UNZIPPED_LIMIT // MB} MB "
            f"({100 * total / UNZIPPED_LIMIT:.0f} %) {verdict}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: artifact_sizes.py BUILD_DIR", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
