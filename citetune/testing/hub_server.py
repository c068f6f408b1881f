"""A loopback Hugging Face hub: model repos held in memory, one commit each, with the part of the API that
huggingface_hub's model_info, list_repo_tree and file downloads (and so snapshot_download) use."""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import unquote, urlsplit

from citetune.testing.loopback import LoopbackServer, QuietHandler

MODEL_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$")
TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)$")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def blob_id(data: bytes) -> str:
    """The git blob id of a file, as the hub gives it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer(LoopbackServer):
    """`with HubServer({"org/model": {"config.json": b"..."}}) as hub:` point huggingface_hub at hub.url."""

    def __init__(self, repos: dict[str, dict[str, bytes]] | None = None):
        self.repos: dict[str, tuple[str, dict[str, bytes]]] = {}
        self.downloads: list[str] = []  # every file body served, as "repo/path"
        for repo_id, files in (repos or {}).items():
            self.publish(repo_id, files)
        self.url = self._serve(self._handler())

    def publish(self, repo_id: str, files: dict[str, bytes]) -> str:
        """Make `files` the repo's new commit, which `main` then points at; return its sha."""
        listing = json.dumps(sorted((name, blob_id(data)) for name, data in files.items()))
        commit = hashlib.sha1(f"{repo_id}\n{listing}".encode()).hexdigest()
        self.repos[repo_id] = (commit, dict(files))
        return commit

    def _handler(self):
        server = self

        class Handler(QuietHandler):
            def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
                      content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                # huggingface_hub turns X-Error-Code into RepositoryNotFoundError, RevisionNotFoundError...
                self._send(status, json.dumps({"error": message}).encode(), {"X-Error-Code": code})

            def _repo(self, repo_id: str, revision: str):
                """(commit, files) of the repo at `revision` (main or its commit), or None after an error reply."""
                if repo_id not in server.repos:
                    self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                    return None
                commit, files = server.repos[repo_id]
                if unquote(revision) not in ("main", commit):
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}")
                    return None
                return commit, files

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if m := MODEL_INFO.match(path):
                    if found := self._repo(m["repo"], m["rev"]):
                        commit, files = found
                        info = {"id": m["repo"], "sha": commit, "private": False,
                                "siblings": [{"rfilename": name} for name in sorted(files)]}
                        self._send(200, json.dumps(info).encode())
                elif m := TREE.match(path):
                    if found := self._repo(m["repo"], m["rev"]):
                        tree = [{"type": "file", "path": name, "size": len(data), "oid": blob_id(data)}
                                for name, data in sorted(found[1].items())]
                        self._send(200, json.dumps(tree).encode())
                elif m := RESOLVE.match(path):
                    self._resolve(m["repo"], m["rev"], unquote(m["path"]))
                elif path.startswith("/api/datasets/"):  # this hub holds models only
                    self._error(404, "RepoNotFound", f"no dataset at {path}")
                else:
                    self._error(404, "EntryNotFound", f"no route {path}")

            def do_POST(self) -> None:  # creating repos, commits: this hub takes no writes
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._send(401, json.dumps({"error": "Invalid credentials in Authorization header"}).encode())

            def do_HEAD(self) -> None:
                if m := RESOLVE.match(urlsplit(self.path).path):
                    self._resolve(m["repo"], m["rev"], unquote(m["path"]))
                else:
                    self._error(404, "EntryNotFound", "no route")

            def _resolve(self, repo_id: str, revision: str, name: str) -> None:
                if not (found := self._repo(repo_id, revision)):
                    return
                commit, files = found
                if name not in files:
                    self._error(404, "EntryNotFound", f"{name} does not exist on {revision}")
                    return
                if self.command == "GET":
                    server.downloads.append(f"{repo_id}/{name}")
                self._send(200, files[name], {"X-Repo-Commit": commit, "ETag": f'"{blob_id(files[name])}"'},
                           content_type="application/octet-stream")

        return Handler
