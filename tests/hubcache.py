"""A local Hugging Face hub cache in the layout ``huggingface_hub`` writes, for offline tests
of the pretrained tier: tiny seeded random weights, never a download.

    <cache>/models--<org>--<name>/blobs/<sha256>                 the file contents
    <cache>/models--<org>--<name>/snapshots/<commit>/<path>      symlinks to the blobs
    <cache>/models--<org>--<name>/refs/main                      the commit

``offline_env(cache)`` is the environment a subprocess needs to read only this cache: the hub's
constants are read when ``huggingface_hub`` is imported, so the loading code runs in a fresh
process with ``HF_HUB_OFFLINE=1`` and an endpoint nobody listens on (any download attempt fails
at once instead of reaching the network).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def put_snapshot(cache: Path, repo_id: str, files: dict[str, bytes], revision: str = "main"
                 ) -> Path:
    """Store ``files`` (repo path -> bytes) as one commit of model repo ``repo_id``; returns
    the snapshot folder."""
    folder = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    h = hashlib.sha1()
    for rel in sorted(files):
        h.update(rel.encode())
        h.update(files[rel])
    commit = h.hexdigest()
    snap = folder / "snapshots" / commit
    for rel, data in files.items():
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / revision).write_text(commit)
    return snap


def put_folder(cache: Path, repo_id: str, src: Path) -> Path:
    """Every file under ``src`` (e.g. a ``save_pretrained`` folder) as one commit."""
    src = Path(src)
    return put_snapshot(cache, repo_id, {p.relative_to(src).as_posix(): p.read_bytes()
                                         for p in sorted(src.rglob("*")) if p.is_file()})


def offline_env(cache: Path, data_dir: Path, space_id: str | None = None, **stager: str
                ) -> dict[str, str]:
    """A subprocess environment: this cache only, offline, no reachable endpoint or proxy (so
    neither the hub nor a plain URL download can reach the network), ``SPACE_ID`` only when
    given, and the given ``STAGER_*`` settings (names without the prefix)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STAGER_", "HF_", "HUGGINGFACE_")) and k != "SPACE_ID"}
    env.update({"HF_HOME": str(Path(cache).parent / "hf_home"), "HF_HUB_CACHE": str(cache),
                "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9",
                "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_OFFLINE": "1",
                "STAGER_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT),
                "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                "no_proxy": "", "NO_PROXY": ""})
    if space_id:
        env["SPACE_ID"] = space_id
    env.update({f"STAGER_{k.upper()}": str(v) for k, v in stager.items()})
    return env


def run_json(code: str, env: dict[str, str], timeout: int = 300) -> dict:
    """Run ``code`` in a fresh interpreter with ``env``; it prints one JSON line last."""
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"subprocess failed ({p.returncode}):\n{p.stderr[-4000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])
