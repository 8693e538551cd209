#!/usr/bin/env bash
# Install the olah Hub mirror (PyPI olah==0.5.4) that tests/test_hub.py starts on 127.0.0.1 to test downloads
# through a real server. It gets its own virtual environment (build/olah-venv, git-ignored) so that its
# dependencies (fastapi, pydantic, httpx, GitPython, ...) never touch the project's environment. The tests
# find it there (or at $OLAH_CLI, or as olah-cli on PATH) and skip the olah tests when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv build/olah-venv
build/olah-venv/bin/python -m pip install --quiet --upgrade pip
build/olah-venv/bin/python -m pip install --quiet olah==0.5.4
build/olah-venv/bin/olah-cli --help > /dev/null
echo "olah installed: build/olah-venv/bin/olah-cli"
