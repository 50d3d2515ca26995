"""The project's settings, plus the witness app (for worker processes started by tests)."""

from checkout_demo.settings_test import *  # noqa: F403
from checkout_demo.settings_test import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "payments.tests.witness.apps.WitnessConfig"]
