"""A bare DRF + simplejwt project serving `GET /me`: the benchmark's reference for what an
authenticated request costs with no middleware, throttle, metrics or request id. Same
installed versions, same database, same signing key and the same gunicorn settings as the
service (bench/bare/gunicorn.conf.py), started by the benchmark beside it."""
