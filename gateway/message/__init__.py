"""The parsed, immutable mail: `parsing.parse(raw)` → a frozen `Message` (model.py), built
from the MIME tree (build.py, trees.py) with the MIME helpers (mime*.py) and address
normalisation (addresses.py). It imports no other part of the gateway but errors."""
