"""Write the HTTP APIs' OpenAPI documents into the repository (``make openapi``).

The documents are generated from the routes' models; ``tests/unit/test_api_documents.py`` fails
when a checked-in one differs from what the code generates, so a change of contract is a
reviewed change of these files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipeline.api.documents import DOCUMENTS


def main() -> int:
    for path, build in DOCUMENTS.items():
        text = json.dumps(build(), indent=2, sort_keys=True) + "\n"
        Path(path).write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
