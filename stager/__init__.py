"""Product Stager: retrieval-assisted staging of e-commerce products.

The library never imports gradio; heavy models load on first use.
"""

__version__ = "0.1.0"
