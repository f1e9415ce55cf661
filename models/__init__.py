"""Networks of Product Stager and their training: pix2pix, EdgeConnect, compact diffusion.

Imports torch; the ``stager`` package imports this lazily (only when a model is used).
"""
