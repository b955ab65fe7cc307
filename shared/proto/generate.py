"""Generate the Python code for shared/proto/*.proto (run as `make proto`).

Import paths in the output are rooted at the repository (`from shared.proto import ...`), so
the generated modules work as a package without sys.path tricks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = Path("shared/proto")


def generate(out_dir: Path) -> list[Path]:
    """Write the *_pb2.py / *_pb2_grpc.py / *.pyi files for every proto under out_dir."""
    from grpc_tools import protoc  # dev-only dependency

    protos = sorted((REPO / PROTO_DIR).glob("*.proto"))
    out_dir.mkdir(parents=True, exist_ok=True)
    include = str(Path(protoc.__file__).parent / "_proto")
    for proto in protos:
        rel = proto.relative_to(REPO)
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{REPO}",
                f"-I{include}",
                f"--python_out={out_dir}",
                f"--pyi_out={out_dir}",
                f"--grpc_python_out={out_dir}",
                str(proto),
            ]
        )
        if code != 0:
            raise SystemExit(f"protoc failed on {rel} (exit {code})")
    return sorted((out_dir / PROTO_DIR).glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO, help="output root (default: repo)")
    args = parser.parse_args()
    for path in generate(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
