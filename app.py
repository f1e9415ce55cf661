"""Product Stager: the Gradio app (also the Hugging Face Space's app_file).

Builds the default catalog and retrieval index on first start, then serves the UI.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from components.layout import CSS, build  # noqa: E402
from stager.config import get_settings  # noqa: E402
from stager.pipeline import get_context  # noqa: E402


def _progress(frac: float, msg: str) -> None:
    print(f"\r{msg} ({frac:4.0%})", end="\n" if frac >= 1 else "", flush=True)


def create_app() -> gr.Blocks:
    """Warm the catalog and the index, then build the page."""
    ctx = get_context(progress=_progress)
    ctx.retriever  # noqa: B018 - build or load the faiss index before the first request
    st = get_settings()
    demo = build(concurrency=st.app_concurrency)
    demo.queue(default_concurrency_limit=st.app_concurrency)
    return demo


def launch_kwargs() -> dict:
    st = get_settings()
    kw = {"server_name": st.app_host, "server_port": st.app_port,
          "share": False, "css": CSS, "allowed_paths": [str(st.data_dir)]}
    if st.app_auth:
        kw["auth"] = [tuple(pair.split(":", 1)) for pair in st.app_auth.split(",") if ":" in pair]
    return kw


if __name__ == "__main__":
    create_app().launch(**launch_kwargs())
