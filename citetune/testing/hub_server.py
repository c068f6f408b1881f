"""A loopback Hugging Face hub: model and dataset repos held in memory, with the part of the API that
huggingface_hub's repo info, tree listing, paths-info and file downloads use (and so snapshot_download,
HfFileSystem and datasets' load_dataset), and the writes that create_repo and create_commit make (and so
DatasetDict.push_to_hub), for the tokens it was told may write."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from citetune.testing.loopback import LoopbackServer, QuietHandler

REPO = r"(?P<repo>[^/]+/[^/]+)"
KIND = r"(?P<kind>models|datasets)"
INFO = re.compile(rf"^/api/{KIND}/{REPO}(?:/revision/(?P<rev>[^/]+))?$")
TREE = re.compile(rf"^/api/{KIND}/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?$")
PATHS_INFO = re.compile(rf"^/api/{KIND}/{REPO}/paths-info/(?P<rev>[^/]+)$")
PREUPLOAD = re.compile(rf"^/api/{KIND}/{REPO}/preupload/(?P<rev>[^/]+)$")
COMMIT = re.compile(rf"^/api/{KIND}/{REPO}/commit/(?P<rev>[^/]+)$")
RESOLVE = re.compile(rf"^/(?:(?P<kind>datasets)/)?{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
LFS_BATCH = re.compile(rf"^/(?:(?P<kind>datasets)/)?{REPO}\.git/info/lfs/objects/batch$")
LFS_PUT = re.compile(r"^/lfs-upload/(?P<oid>[0-9a-f]{64})$")
LFS_SUFFIXES = (".parquet", ".safetensors", ".bin", ".arrow")  # what the hub's default .gitattributes sends to LFS


def blob_id(data: bytes) -> str:
    """The git blob id of a file, as the hub gives it."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _folders(files) -> set[str]:
    return {name.rsplit("/", i)[0] for name in files for i in range(1, name.count("/") + 1)}


class HubServer(LoopbackServer):
    """`with HubServer({"org/model": {"config.json": b"..."}}) as hub:` point huggingface_hub at hub.url.
    Repos are models unless published with kind="datasets"; writes need a token in `write_tokens`."""

    def __init__(self, repos: dict[str, dict[str, bytes]] | None = None, write_tokens: set[str] = frozenset()):
        self.store: dict[str, dict[str, tuple[str, dict[str, bytes]]]] = {"models": {}, "datasets": {}}
        self.repos = self.store["models"]  # repo id -> (commit, files)
        self.datasets = self.store["datasets"]
        self.write_tokens = set(write_tokens)
        self.downloads: list[str] = []  # every file body served, as "repo/path"
        self.lfs: dict[str, bytes] = {}  # large files uploaded and not yet committed, by sha256
        self.created: list[dict] = []  # every create_repo request's payload
        self.commits: list[dict] = []  # every commit written: kind, repo, message, files added and deleted
        for repo_id, files in (repos or {}).items():
            self.publish(repo_id, files)
        self.url = self._serve(self._handler())

    def publish(self, repo_id: str, files: dict[str, bytes], kind: str = "models") -> str:
        """Make `files` the repo's new commit, which `main` then points at; return its sha."""
        listing = json.dumps(sorted((name, blob_id(data)) for name, data in files.items()))
        parent = self.store[kind].get(repo_id, ("",))[0]  # as in git, a commit names its parent
        commit = hashlib.sha1(f"{kind}/{repo_id}\n{parent}\n{listing}".encode()).hexdigest()
        self.store[kind][repo_id] = (commit, dict(files))
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

            def _json(self, value) -> None:
                self._send(200, json.dumps(value).encode())

            def _error(self, status: int, code: str, message: str) -> None:
                # huggingface_hub turns X-Error-Code into RepositoryNotFoundError, RevisionNotFoundError...
                self._send(status, json.dumps({"error": message}).encode(), {"X-Error-Code": code})

            def _repo(self, kind: str, repo_id: str, revision: str):
                """(commit, files) of the repo at `revision` (main or its commit), or None after an error reply."""
                if repo_id not in server.store[kind]:
                    self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                    return None
                commit, files = server.store[kind][repo_id]
                if unquote(revision) not in ("main", commit):
                    self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(revision)}")
                    return None
                return commit, files

            def _entry(self, files: dict[str, bytes], name: str) -> dict:
                if name in files:
                    return {"type": "file", "path": name, "size": len(files[name]), "oid": blob_id(files[name])}
                return {"type": "directory", "path": name, "oid": hashlib.sha1(name.encode()).hexdigest()}

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                path, query = url.path, parse_qs(url.query)
                if m := INFO.match(path):
                    if found := self._repo(m["kind"], m["repo"], m["rev"] or "main"):
                        commit, files = found
                        self._json({"id": m["repo"], "sha": commit, "private": False,
                                    "siblings": [{"rfilename": name} for name in sorted(files)]})
                elif m := TREE.match(path):
                    if found := self._repo(m["kind"], m["repo"], m["rev"]):
                        files = found[1]
                        prefix = unquote(m["path"] or "").strip("/")
                        names = sorted(set(files) | _folders(files))
                        if prefix and prefix not in _folders(files):
                            self._error(404, "EntryNotFound", f"{prefix} does not exist on {m['rev']}")
                            return
                        under = [n for n in names if not prefix or n.startswith(prefix + "/")]
                        if query.get("recursive", ["False"])[0].lower() != "true":
                            depth = prefix.count("/") + 1 if prefix else 0
                            under = [n for n in under if n.count("/") == depth]
                        self._json([self._entry(files, n) for n in under])
                elif m := RESOLVE.match(path):
                    self._resolve(m["kind"] or "models", m["repo"], m["rev"], unquote(m["path"]))
                else:
                    self._error(404, "EntryNotFound", f"no route {path}")

            def do_HEAD(self) -> None:
                if m := RESOLVE.match(urlsplit(self.path).path):
                    self._resolve(m["kind"] or "models", m["repo"], m["rev"], unquote(m["path"]))
                else:
                    self._error(404, "EntryNotFound", "no route")

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)

            def _may_write(self) -> bool:
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                if token in server.write_tokens:
                    return True
                # as the hub answers a missing or read-only token
                self._send(401, json.dumps({"error": "Invalid credentials in Authorization header"}).encode())
                return False

            def do_PUT(self) -> None:  # the LFS upload of one large file, at the address the batch gave
                body = self._body()
                if not (m := LFS_PUT.match(urlsplit(self.path).path)):
                    self._error(404, "EntryNotFound", "no route")
                elif hashlib.sha256(body).hexdigest() != m["oid"]:
                    self._error(400, "BadRequest", "the body does not hash to the oid it was sent to")
                else:
                    server.lfs[m["oid"]] = body
                    self._send(200)

            def do_POST(self) -> None:
                body = self._body()
                path = urlsplit(self.path).path
                if m := PATHS_INFO.match(path):  # a read, sent as a form
                    if found := self._repo(m["kind"], m["repo"], m["rev"]):
                        files = found[1]
                        wanted = parse_qs(body.decode()).get("paths", [])
                        known = set(files) | _folders(files)
                        self._json([self._entry(files, p) for p in wanted if p in known])
                    return
                if path == "/api/validate-yaml":  # a dataset card's front matter must be YAML
                    self._validate_card(json.loads(body)["content"])
                    return
                if not self._may_write():
                    return
                if path == "/api/repos/create":
                    self._create(json.loads(body))
                elif m := PREUPLOAD.match(path):  # every file goes inline in the commit, none through LFS
                    files = json.loads(body)["files"]
                    self._json({"files": [{"path": f["path"], "shouldIgnore": False,
                                           "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular"}
                                          for f in files]})
                elif LFS_BATCH.match(path):
                    objects = json.loads(body)["objects"]
                    self._send(200, json.dumps({"transfer": "basic", "objects": [
                        {**o, "actions": {"upload": {"href": f"{server.url}/lfs-upload/{o['oid']}"}}}
                        for o in objects]}).encode(), content_type="application/vnd.git-lfs+json")
                elif m := COMMIT.match(path):
                    self._commit(m["kind"], m["repo"], m["rev"], [json.loads(line) for line in body.splitlines()])
                else:
                    self._error(404, "EntryNotFound", f"no route {path}")

            def _validate_card(self, content: str) -> None:
                front = content.split("---")[1] if content.startswith("---") and content.count("---") >= 2 else ""
                try:
                    yaml.safe_load(front)
                except yaml.YAMLError as e:
                    self._send(400, json.dumps({"errors": [{"message": str(e)}], "warnings": []}).encode())
                    return
                self._json({"errors": [], "warnings": []})

            def _create(self, payload: dict) -> None:
                server.created.append(payload)
                kind = f"{payload.get('type') or 'model'}s"
                repo_id = f"{payload['organization']}/{payload['name']}"
                if repo_id in server.store[kind]:
                    self._send(409, json.dumps({"error": "You already created this repo", "url": repo_id}).encode())
                    return
                server.publish(repo_id, {}, kind)
                prefix = "" if kind == "models" else f"{kind}/"
                self._json({"url": f"{server.url}/{prefix}{repo_id}", "name": repo_id})

            def _commit(self, kind: str, repo_id: str, revision: str, items: list[dict]) -> None:
                if not (found := self._repo(kind, repo_id, revision)):
                    return
                commit, files = found
                files = dict(files)
                header = next(i["value"] for i in items if i["key"] == "header")
                if header.get("parentCommit") not in (None, commit):
                    self._error(412, "PreconditionFailed", "the parent commit is not the head of the branch")
                    return
                added, deleted = [], []
                for item in items:
                    value = item["value"]
                    if item["key"] == "file":
                        files[value["path"]] = base64.b64decode(value["content"])
                        added.append(value["path"])
                    elif item["key"] == "lfsFile":
                        if value["oid"] not in server.lfs:
                            self._error(400, "BadRequest", f"{value['path']}: LFS object {value['oid']} was never uploaded")
                            return
                        files[value["path"]] = server.lfs[value["oid"]]
                        added.append(value["path"])
                    elif item["key"] == "deletedFile":
                        files.pop(value["path"], None)
                        deleted.append(value["path"])
                    elif item["key"] != "header":
                        self._error(400, "BadRequest", f"this hub takes no {item['key']}")
                        return
                new = server.publish(repo_id, files, kind)
                server.commits.append({"kind": kind, "repo": repo_id, "message": header["summary"],
                                       "added": sorted(added), "deleted": sorted(deleted)})
                prefix = "" if kind == "models" else f"{kind}/"
                self._json({"commitUrl": f"{server.url}/{prefix}{repo_id}/commit/{new}", "commitOid": new,
                            "pullRequestUrl": None})

            def _resolve(self, kind: str, repo_id: str, revision: str, name: str) -> None:
                if not (found := self._repo(kind, repo_id, revision)):
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
