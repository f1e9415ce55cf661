"""Product Stager: the Gradio app (also the Hugging Face Space's app_file).

Builds the default catalog and retrieval index on first start, warms the models in the
background, then serves the UI. The file route serves only ``<data>/public`` (display copies
of audit images); the database, reports, catalog manifests and caches are never served.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import logging  # noqa: E402
import threading  # noqa: E402

import gradio as gr  # noqa: E402

from components.layout import CSS, build  # noqa: E402
from stager.config import Settings, get_settings  # noqa: E402
from stager.pipeline import get_context  # noqa: E402

log = logging.getLogger("stager.app")


def _progress(frac: float, msg: str) -> None:
    print(f"\r{msg} ({frac:4.0%})", end="\n" if frac >= 1 else "", flush=True)


def warm_models() -> list[str]:
    """Load every available backend's networks and the segmenter (so the first *Run all
    backends* does not pay for loading), then, with SAM, embed every catalog scene into its
    disk cache. Returns the names warmed; failures are logged."""
    from stager.backends import REGISTRY, get_backend

    warmed = []
    try:
        get_context().segmenter  # noqa: B018 - SAM (or GrabCut) ready before the first click
        warmed.append("segmenter")
    except Exception as exc:  # noqa: BLE001 - warming is best effort; the UI reports errors
        log.warning("segmenter warm-up failed: %s", exc)
    for name in REGISTRY:
        b = get_backend(name)
        if not b.available()[0] or not hasattr(b, "load"):
            continue
        try:
            b.load()
            warmed.append(name)
        except Exception as exc:  # noqa: BLE001
            log.warning("warm-up of %s failed: %s", name, exc)
    try:  # the catalog products' vectors, which the retrieval's category rerank reads
        get_context().retriever.product_vectors()
        warmed.append("product vectors")
    except Exception as exc:  # noqa: BLE001
        log.warning("product vectors not precomputed: %s", exc)
    try:  # then SAM's embeddings of the catalog's scenes (a Space builds its catalog at
        # start); every backend is warm first, so a designer's first run does not wait
        from stager.segment import precompute_embeddings

        seg = get_context().segmenter
        if seg.sam is not None:
            r = precompute_embeddings(get_context().catalog, seg)
            log.info("SAM embeddings: %d computed, %d cached", r["computed"], r["cached"])
    except Exception as exc:  # noqa: BLE001
        log.warning("SAM embeddings not precomputed: %s", exc)
    return warmed


def create_app(warm: bool = True) -> gr.Blocks:
    """Warm the catalog and the index, start warming the models, then build the page."""
    ctx = get_context(progress=_progress)
    ctx.retriever  # noqa: B018 - build or load the faiss index before the first request
    if warm:
        threading.Thread(target=warm_models, name="warm-models", daemon=True).start()
    from components.audit import warm_display_copies

    threading.Thread(target=warm_display_copies, name="warm-display", daemon=True).start()
    st = get_settings()
    serve_public_as_static(st)
    demo = build(concurrency=st.app_concurrency)
    demo.queue(default_concurrency_limit=st.app_concurrency)
    return demo


def serve_public_as_static(st: Settings) -> None:
    """Display copies are static files: handed out by URL as they are, never hashed or copied
    into Gradio's cache on every event (each vote hands out the next pair's two images)."""
    st.public_dir.mkdir(parents=True, exist_ok=True)
    gr.set_static_paths([str(st.public_dir)])


def blocked_paths(st: Settings) -> list[str]:
    """Everything in the data folder except ``public/``, and the SQLite database files
    wherever they are. (Nothing outside ``public/`` is allowed anyway; this is the second
    lock on the door.)"""
    public = st.public_dir.resolve()
    out = [str(p.resolve()) for p in st.data_dir.iterdir() if p.resolve() != public] \
        if st.data_dir.is_dir() else []
    out += [str(st.data_dir / name) for name in ("catalog", "cache", "audit", "outputs",
                                                 "reports", "audit.sqlite")]
    if st.db_url.startswith("sqlite:///"):
        db = st.db_url[len("sqlite:///"):]
        out += [db, db + "-wal", db + "-shm", db + "-journal"]
    return sorted(set(out))


def launch_kwargs() -> dict:
    st = get_settings()
    st.public_dir.mkdir(parents=True, exist_ok=True)
    kw = {"server_name": st.app_host, "server_port": st.app_port,
          "share": False, "css": CSS, "allowed_paths": [str(st.public_dir)],
          "blocked_paths": blocked_paths(st), "max_file_size": f"{st.app_max_upload_mb}mb"}
    if st.app_auth:
        kw["auth"] = [tuple(pair.split(":", 1)) for pair in st.app_auth.split(",") if ":" in pair]
    return kw


if __name__ == "__main__":
    create_app().launch(**launch_kwargs())
