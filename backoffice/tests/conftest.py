"""The payments suite's Stripe emulator, for the admin's tests that ask Stripe."""

from payments.tests.conftest import emulator, emulator_server, settled, synced_product  # noqa: F401
