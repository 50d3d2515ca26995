"""A test-only app for worker processes: it records each fulfillment signal in files a test can read.

Workers started by tests with `--settings payments.tests.witness.settings` load it. Each signal appends
`<order id> <pid>` to `$WITNESS_DIR/claimed` when its receiver runs, and to `$WITNESS_DIR/sent` when the
signal's transaction commits; with `WITNESS_BLOCK=true` the receiver then blocks for ever, as a worker
stuck mid-task does until it is killed.
"""
