"""Run your own model under Clarity, and read Clarity's results in pandas.

- :func:`serve` turns one function ``predict(image: numpy.ndarray, spec: dict) -> dict`` into a
  ``clarity-worker/1`` worker (``[adapter] kind = "worker"``): the model loads once, Clarity
  sends one JSON line per run over stdin and reads one JSON line back from stdout.
- :func:`read_sweep` / :func:`read_observations` load a sweep directory's tables into pandas.

See docs/adapters.md ("worker") in the Clarity repository for the protocol.
"""

from .image import decode_image
from .sweep import Sweep, read_observations, read_sweep
from .worker import PROTOCOL, handle_line, handshake, serve

__all__ = [
    "PROTOCOL",
    "Sweep",
    "decode_image",
    "handle_line",
    "handshake",
    "read_observations",
    "read_sweep",
    "serve",
]
__version__ = "0.1.0"
