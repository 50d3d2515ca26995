"""An offline stand-in for the slice of Stripe's API this project uses.

Start it with `EmulatorServer(...).start()` or `python -m stripe_emulator`, then point
stripe-python's API base at `base_url`. With `state_file=` (`--state-file`) its objects outlive a
restart; see state_file.py for what is kept.
"""

from .emulator import EmulatorServer
from .objects import API_VERSION
from .webhooks import signature_header

__all__ = ["API_VERSION", "EmulatorServer", "signature_header"]
