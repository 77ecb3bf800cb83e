"""The outer ring: command line, HTTP API, real clock and entropy, chain and bank clients.

`adapters/cli.py` is the composition root and may import every layer.
"""
