"""The one harness of the tests, the fault tests and the benchmark (imported as `tests.harness`).

- procs: free ports, subprocesses in their own session with their log, wait_until, /proc look-ups;
- service: the service's web (gunicorn), Celery workers and beat, with the service's environment;
- servers: private PostgreSQL clusters and Redis servers, and a TCP proxy that injects faults;
- invariants: the contract's guarantees, checked in SQL on a database after bookings were decided;
- polling: the example client's polling rules (examples/book_tickets.py) for an httpx client.

service needs Django settings (the test database); procs, servers, invariants and polling do not.
"""
