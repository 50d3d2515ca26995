"""Settings for the test suite: the development settings, whatever the environment or `.env` says.
pytest-django still runs each test with DEBUG off, so the error pages are the production ones."""

import os

os.environ["DJANGO_DEBUG"] = "true"

from checkout_demo.settings import *  # noqa: F403
