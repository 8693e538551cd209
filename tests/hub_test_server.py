"""TEST SERVERS for ``tests/test_hub.py`` — never use them for anything but tests.

* :class:`FakeHub` — a minimal, in-memory **test implementation** of the Hugging Face Hub HTTP API on
  127.0.0.1: repo creation, branches, ``preupload``, the git-LFS batch API + upload, ``commit`` (ndjson),
  repo info, ``tree``, ``paths-info`` and ``resolve`` — the endpoints that ``huggingface_hub`` 2.x,
  ``transformers`` 5 and ``datasets`` 5 use to push and pull (hf_ecosystem.md §2.3). No auth, no Xet (clients
  need ``HF_HUB_DISABLE_XET=1``), repo ids must be ``org/name``. Every request is logged in ``requests``.
* :class:`OlahMirror` — the real olah mirror (PyPI ``olah==0.5.4``, installed in its own virtual environment by
  ``.ci/install_olah.sh``) serving local git repositories, offline, on 127.0.0.1 (hf_ecosystem.md §2.2).
* :class:`Worker` — a Python subprocess with its own environment. ``HF_ENDPOINT``/``HF_HOME``/
  ``HF_HUB_OFFLINE`` are read when ``huggingface_hub`` is imported, so every client configuration gets its own
  process, exactly as a user would set the variables; tests send it code and get JSON back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

HOST = "127.0.0.1"
LFS_SUFFIXES = (".safetensors", ".parquet", ".arrow", ".bin", ".pt", ".npy")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout} s")


def git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


# --------------------------------------------------------------------------------------------------- FakeHub


class _Repo:
    def __init__(self, private: bool):
        self.private = private
        root = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        self.commits: dict[str, dict[str, bytes]] = {root: {}}
        self.refs = {"main": root}

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


class _HubError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


_API = re.compile(r"^/api/(models|datasets)/([^/]+/[^/]+?)(?:/(revision|tree|paths-info|preupload|commit|branch)"
                  r"(?:/([^/]+))?(/.*)?)?$")
_RESOLVE = re.compile(r"^/(datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_LFS_BATCH = re.compile(r"^/(datasets/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$")


class FakeHub:
    """In-memory test Hub on 127.0.0.1 (see the module docstring); ``stop`` it when done."""

    def __init__(self):
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean; requests are in hub.requests
                pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    status, headers, payload = hub._dispatch(method, self.path, self.headers, body)
                except _HubError as err:
                    status, payload = err.status, json.dumps({"error": err.message, **err.extra}).encode()
                    headers = {"X-Error-Code": err.code, "X-Error-Message": err.message,
                               "Content-Type": "application/json"}
                with hub.lock:
                    hub.requests.append((method, self.path, status))
                self.send_response(status)
                headers.setdefault("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(payload)

            def do_GET(self):
                self._handle("GET")

            def do_HEAD(self):
                self._handle("HEAD")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

        self.server = ThreadingHTTPServer((HOST, free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def export(self, kind: str, repo_id: str, folder: Path, revision: str = "main") -> Path:
        """Write a repo's files at ``revision`` into ``folder`` (to serve the same repo from another server)."""
        _, files = self._tree_at(kind, repo_id, revision)
        for path, content in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
        return folder

    # ------------------------------------------------------------------------------------------ routing

    def _dispatch(self, method: str, raw_path: str, headers, body: bytes):
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(json.loads(body))
        if method == "POST" and path == "/api/validate-yaml":
            return _json({"errors": [], "warnings": []})
        if method == "PUT" and path.startswith("/lfs-upload/"):
            oid = path.rsplit("/", 1)[1]
            if hashlib.sha256(body).hexdigest() != oid:
                raise _HubError(400, "BadRequest", "LFS upload does not match its sha256")
            with self.lock:
                self.lfs[oid] = body
            return 200, {}, b""
        match = _LFS_BATCH.match(path)
        if match and method == "POST":
            return self._lfs_batch(json.loads(body))
        match = _RESOLVE.match(path)
        if match and method in ("GET", "HEAD"):
            kind = "dataset" if match.group(1) else "model"
            return self._resolve(kind, match.group(2), unquote(match.group(3)), unquote(match.group(4)), headers)
        match = _API.match(path)
        if match:
            kind = match.group(1)[:-1]
            repo_id, action, revision = match.group(2), match.group(3), unquote(match.group(4) or "main")
            sub = unquote(match.group(5) or "").strip("/")
            if method == "GET" and action in (None, "revision"):
                return self._info(kind, repo_id, revision)
            if method == "GET" and action == "tree":
                return self._tree(kind, repo_id, revision, sub, query.get("recursive", ["false"])[0] == "true")
            if method == "POST" and action == "paths-info":
                return self._paths_info(kind, repo_id, revision, parse_qs(body.decode()).get("paths", []))
            if method == "POST" and action == "preupload":
                return self._preupload(kind, repo_id, revision, json.loads(body))
            if method == "POST" and action == "commit":
                return self._commit(kind, repo_id, revision, body)
            if method == "POST" and action == "branch":
                return self._branch(kind, repo_id, revision, json.loads(body or b"{}"))
        raise _HubError(404, "NotImplemented", f"the test Hub does not implement {method} {path}")

    # ---------------------------------------------------------------------------------------- helpers

    def _repo(self, kind: str, repo_id: str) -> _Repo:
        repo = self.repos.get((kind, repo_id))
        if repo is None:
            raise _HubError(404, "RepoNotFound", f"{kind} repository {repo_id} not found")
        return repo

    def _tree_at(self, kind: str, repo_id: str, revision: str) -> tuple[str, dict[str, bytes]]:
        repo = self._repo(kind, repo_id)
        sha = repo.resolve(revision)
        if sha is None:
            raise _HubError(404, "RevisionNotFound", f"revision {revision} not found in {repo_id}")
        return sha, repo.commits[sha]

    def _entry(self, path: str, content: bytes) -> dict:
        entry = {"type": "file", "oid": git_blob_sha(content), "size": len(content), "path": path}
        if path.endswith(LFS_SUFFIXES):
            entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
        return entry

    def _entries(self, files: dict[str, bytes], prefix: str, recursive: bool) -> list[dict]:
        base = f"{prefix}/" if prefix else ""
        entries, folders = [], set()
        for path in sorted(files):
            if not path.startswith(base):
                continue
            rest = path[len(base):].split("/")
            for depth in range(1, len(rest) if recursive else min(len(rest), 2)):
                folders.add(base + "/".join(rest[:depth]))
            if recursive or len(rest) == 1:
                entries.append(self._entry(path, files[path]))
        entries += [{"type": "directory", "oid": git_blob_sha(f.encode()), "size": 0, "path": f} for f in sorted(folders)]
        return entries

    # ---------------------------------------------------------------------------------------- endpoints

    def _create_repo(self, payload: dict):
        kind = payload.get("type") or "model"
        if not payload.get("organization"):
            raise _HubError(400, "BadRequest", "the test Hub needs org/name repo ids")
        repo_id = f"{payload['organization']}/{payload['name']}"
        prefix = "" if kind == "model" else f"{kind}s/"
        url = f"{self.url}/{prefix}{repo_id}"
        with self.lock:
            if (kind, repo_id) in self.repos:
                raise _HubError(409, "RepoExists", f"{repo_id} already exists", url=url)
            self.repos[(kind, repo_id)] = _Repo(payload.get("visibility") == "private")
        return _json({"url": url, "name": repo_id})

    def _info(self, kind: str, repo_id: str, revision: str):
        sha, files = self._tree_at(kind, repo_id, revision)
        repo = self._repo(kind, repo_id)
        return _json({"id": repo_id, "author": repo_id.split("/")[0], "sha": sha, "private": repo.private,
                      "disabled": False, "gated": False, "tags": [], "downloads": 0, "likes": 0,
                      "siblings": [{"rfilename": p, "size": len(c)} for p, c in sorted(files.items())]})

    def _tree(self, kind: str, repo_id: str, revision: str, sub: str, recursive: bool):
        _, files = self._tree_at(kind, repo_id, revision)
        if sub and not any(p.startswith(sub + "/") for p in files):
            raise _HubError(404, "EntryNotFound", f"{sub} is not a folder of {repo_id}")
        return _json(self._entries(files, sub, recursive))

    def _paths_info(self, kind: str, repo_id: str, revision: str, paths: list[str]):
        _, files = self._tree_at(kind, repo_id, revision)
        found = []
        for path in (p.strip("/") for p in paths):
            if path in files:
                found.append(self._entry(path, files[path]))
            elif any(p.startswith(path + "/") for p in files):
                found.append({"type": "directory", "oid": git_blob_sha(path.encode()), "size": 0, "path": path})
        return _json(found)

    def _preupload(self, kind: str, repo_id: str, revision: str, payload: dict):
        repo = self._repo(kind, repo_id)
        files = repo.commits.get(repo.resolve(revision) or "", {})
        answer = []
        for item in payload["files"]:
            path = item["path"]
            lfs = path.endswith(LFS_SUFFIXES) or item["size"] >= 10 * 2**20
            existing = files.get(path)
            oid = None
            if existing is not None:
                oid = hashlib.sha256(existing).hexdigest() if lfs else git_blob_sha(existing)
            answer.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return _json({"files": answer})

    def _lfs_batch(self, payload: dict):
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.lfs:
                entry["actions"] = {"upload": {"href": f"{self.url}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        return _json({"transfer": "basic", "objects": objects})

    def _commit(self, kind: str, repo_id: str, revision: str, body: bytes):
        repo = self._repo(kind, repo_id)
        with self.lock:
            parent = repo.resolve(revision)
            if parent is None or revision not in repo.refs:
                raise _HubError(404, "RevisionNotFound", f"branch {revision} not found in {repo_id}")
            files = dict(repo.commits[parent])
            for line in body.splitlines():
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "lfsFile":
                    if value["oid"] not in self.lfs:
                        raise _HubError(400, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = self.lfs[value["oid"]]
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    files = {p: c for p, c in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            sha = hashlib.sha1(f"{parent}{time.time_ns()}".encode()).hexdigest()
            repo.commits[sha] = files
            repo.refs[revision] = sha
        prefix = "" if kind == "model" else f"{kind}s/"
        return _json({"commitUrl": f"{self.url}/{prefix}{repo_id}/commit/{sha}", "commitOid": sha,
                      "pullRequestUrl": None})

    def _branch(self, kind: str, repo_id: str, branch: str, payload: dict):
        repo = self._repo(kind, repo_id)
        with self.lock:
            if branch in repo.refs:
                raise _HubError(409, "BranchExists", f"branch {branch} already exists")
            start = repo.resolve(payload.get("startingPoint") or "main")
            repo.refs[branch] = start
        return _json({})

    def _resolve(self, kind: str, repo_id: str, revision: str, path: str, headers):
        sha, files = self._tree_at(kind, repo_id, revision)
        if path not in files:
            raise _HubError(404, "EntryNotFound", f"{path} not found in {repo_id}@{revision}")
        content = files[path]
        out = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_sha(content)}"', "Accept-Ranges": "bytes",
               "Content-Type": "application/octet-stream"}
        if path.endswith(LFS_SUFFIXES):
            out["X-Linked-Etag"] = f'"{hashlib.sha256(content).hexdigest()}"'
            out["X-Linked-Size"] = str(len(content))
        match = re.match(r"bytes=(\d+)-(\d*)$", headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else len(content) - 1, len(content) - 1)
            out["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            return 206, out, content[start:end + 1]
        return 200, out, content


def _json(value) -> tuple[int, dict, bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(value).encode()


# --------------------------------------------------------------------------------------------------- olah


def find_olah_cli(repo_root: Path) -> str | None:
    """``$OLAH_CLI``, else the venv made by ``.ci/install_olah.sh`` (``build/olah-venv``), else ``olah-cli`` on PATH."""
    candidates = [os.environ.get("OLAH_CLI"), str(repo_root / "build" / "olah-venv" / "bin" / "olah-cli"),
                  shutil.which("olah-cli")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def git_commit_folder(folder: Path) -> None:
    """Turn a folder into a one-commit git repository on branch ``main`` (olah serves such repos)."""
    env = dict(os.environ, GIT_AUTHOR_NAME="test", GIT_AUTHOR_EMAIL="test@localhost", GIT_COMMITTER_NAME="test",
               GIT_COMMITTER_EMAIL="test@localhost")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "test repository"]):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True, timeout=60, capture_output=True)


class OlahMirror:
    """olah on 127.0.0.1 in offline mode, serving ``mirrors/{models,datasets}/org/name`` git repositories."""

    def __init__(self, olah_cli: str, workdir: Path, timeout: float = 60.0):
        self.mirrors = workdir / "mirrors"
        for kind in ("models", "datasets"):
            (self.mirrors / kind).mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://{HOST}:{port}"
        config = workdir / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "{HOST}"\nport = {port}\n'
            f'repos-path = "{workdir / "repos"}"\n'
            f'mirror-netloc = "{HOST}:{port}"\nmirror-lfs-netloc = "{HOST}:{port}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            "[accessibility]\noffline = true\n"
        )
        self.log = open(workdir / "olah.log", "wb")
        self.process = subprocess.Popen([olah_cli, "-c", str(config)], cwd=workdir, stdout=self.log,
                                        stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, timeout, self.process)
        except Exception:
            self.stop()
            raise

    def add_repo(self, kind: str, repo_id: str, source: Path) -> None:
        """Copy ``source`` to the mirror as ``kind`` (``models``/``datasets``) repository ``repo_id`` and commit it."""
        target = self.mirrors / kind / repo_id
        shutil.copytree(source, target)
        git_commit_folder(target)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


# --------------------------------------------------------------------------------------------------- Worker

_WORKER_LOOP = r"""
import json, os, sys, traceback
namespace = {}
channel = os.fdopen(os.dup(1), "w")  # replies only; anything else written to stdout (also by C code) goes to stderr
os.dup2(2, 1)
sys.stdout = sys.stderr
channel.write(json.dumps({"ready": True}) + "\n"); channel.flush()
for line in sys.stdin:
    namespace.pop("result", None)
    try:
        exec(json.loads(line), namespace)
        reply = {"ok": True, "result": namespace.get("result")}
    except BaseException:
        reply = {"ok": False, "error": traceback.format_exc()}
    channel.write(json.dumps(reply, default=str) + "\n"); channel.flush()
"""


class WorkerError(RuntimeError):
    pass


class Worker:
    """A Python subprocess with its own environment that runs code from the tests (``run``) and returns
    the value the code assigns to ``result`` (JSON). ``prelude`` runs first (e.g. one that blocks the package)."""

    def __init__(self, env: dict[str, str], cwd: Path, prelude: str = "", stderr_path: Path | None = None):
        self.stderr_path = stderr_path or cwd / "worker.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-c", prelude + _WORKER_LOOP], cwd=cwd, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, text=True,
        )
        self._ready = False

    def _read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"worker gave no answer within {timeout} s; stderr: {self.stderr_tail()}")
        line = self.process.stdout.readline()
        if not line:
            raise WorkerError(f"worker exited ({self.process.poll()}); stderr: {self.stderr_tail()}")
        return json.loads(line)

    def run(self, code: str, timeout: float = 120.0):
        """Execute ``code`` in the worker; return its ``result``; raise ``WorkerError`` with the traceback."""
        if not self._ready:
            self._read(timeout)  # startup (imports of the prelude)
            self._ready = True
        self.process.stdin.write(json.dumps(code) + "\n")
        self.process.stdin.flush()
        reply = self._read(timeout)
        if not reply["ok"]:
            raise WorkerError(reply["error"])
        return reply["result"]

    def stderr_tail(self, chars: int = 3000) -> str:
        self._stderr.flush()
        return Path(self.stderr_path).read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # nothing to flush: replies were read, files are written by then
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            stream.close()
