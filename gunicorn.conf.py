"""Production server settings: `gunicorn -c gunicorn.conf.py checkout_demo.wsgi`.

Every value can be changed from the environment, so one file serves a laptop, a VM and a container.

Worker class: gthread (threads inside each worker process), not sync. Two of this project's pages call
Stripe's API while the buyer waits (checkout creates a session, the success page retrieves one): a few
hundred milliseconds of waiting on the network during which a sync worker can do nothing else, while a
gthread worker serves other requests from its other threads. gthread also keeps client connections
alive between requests (sync closes each one), which a load balancer or a busy webhook sender reuses.
Django is thread-safe and holds one database connection per thread.
"""

import multiprocessing
import os

# The settings' own readers: a value that is not a number or a yes/no stops the start with its name.
# Neither module reads Django's settings, so importing them here configures nothing.
from checkout_demo.env import env_bool, env_int
from checkout_demo.logs import gunicorn_logging_config, log_format_from_env

_cores = multiprocessing.cpu_count()

# GUNICORN_BIND wins; otherwise the PORT a platform hands out (Heroku, Render, Cloud Run), on all interfaces.
bind = [os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{env_int('PORT', 8000)}"]

# One process per core does the Python work; the threads cover the time spent waiting on PostgreSQL and
# on Stripe. Measured on 2 cores with PostgreSQL (bench/webhook_load.py): 2 workers with 2, 4 or 8
# threads served the webhook equally fast, 3 or 4 workers about 10% slower (more processes, more
# switching). On SQLite, which has one writer at a time, 2 workers x 1 thread did best. WEB_CONCURRENCY
# is the name platforms use; GUNICORN_CMD_ARGS overrides anything here (e.g. "--worker-class sync").
worker_class = "gthread"
workers = env_int("WEB_CONCURRENCY", max(2, _cores))
threads = env_int("GUNICORN_THREADS", 4)

# A worker silent this long is killed and replaced. A request that waits on Stripe can take
# STRIPE_TIMEOUT_SECONDS x (1 + STRIPE_MAX_NETWORK_RETRIES) = 30 s with the defaults, so leave headroom.
timeout = env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Seconds an idle client connection stays open. Behind a load balancer, set it above the balancer's own
# idle timeout (e.g. 65 for AWS ALB's 60) so gunicorn never closes a connection the balancer is reusing.
keepalive = env_int("GUNICORN_KEEPALIVE", 5)

# Restart each worker after about this many requests, to bound slow memory growth; the jitter spreads the
# restarts so the workers never all restart at once. 0 turns it off.
max_requests = env_int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = env_int("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 10)

# Load Django once in the master and fork the workers from it: less memory, a bad deploy fails at start-up
# instead of in every worker, and a worker that dies (crash, OOM kill, max_requests) is replaced in
# milliseconds. Safe here because nothing opens a database connection or a socket at import time: Django
# connects on the first query in each worker, the Stripe client is made on first use. The cost: a HUP
# reload does not pick up new code; deploy by restarting the master.
preload_app = env_bool("GUNICORN_PRELOAD", True)

# The heartbeat file lives in memory, not on a disk that may stall (the usual advice for containers).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Errors to stderr; the access log is off unless asked for (GUNICORN_ACCESS_LOG=- for stdout, or a path):
# the proxy in front usually logs requests already, and a line per webhook costs time on the hot path.
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# With LOG_FORMAT=json (the default without DJANGO_DEBUG, as in the settings), gunicorn's own lines are JSON
# objects through the project's formatter, so one collector reads every line; the access lines, when asked
# for, then go to stderr with the rest and carry the request's id.
if log_format_from_env() == "json":
    logconfig_dict = gunicorn_logging_config(level=loglevel.upper(), access_log=bool(accesslog))

# gunicorn 25+ opens a control socket at ~/.gunicorn/gunicorn.ctl by default: two servers on one machine
# would fight over it. Only open one where asked for, at the path given.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
