"""Product Stager web app (placeholder until the UI lands): serves the catalog status."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

with gr.Blocks(title="Product Stager") as demo:
    gr.Markdown("# Product Stager\nThe staging UI is being built.")

if __name__ == "__main__":
    demo.launch()
