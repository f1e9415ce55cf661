"""The smallest real server of the app's scripted votes, for the kill -9 test: the app's
``/next_pair`` and ``/vote`` endpoints (``components.api.render_vote_api``: same handlers,
same queue settings), launched with the app's launch settings (public folder static, block
list), without the catalog, the index or the models. Settings come from the environment
(``STAGER_DATA_DIR``, ``STAGER_DB_URL``, ``STAGER_APP_PORT``).

    python tests/vote_server.py
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

import app  # noqa: E402
from components import api  # noqa: E402
from components.layout import make_private  # noqa: E402
from stager.config import get_settings  # noqa: E402


def main() -> None:
    st = get_settings()
    app.serve_public_as_static(st)
    with gr.Blocks(title="Product Stager votes") as demo:
        api.render_vote_api()
    make_private(demo, api.ENDPOINTS)
    demo.queue(default_concurrency_limit=st.app_concurrency)
    demo.launch(**app.launch_kwargs())


if __name__ == "__main__":
    main()
