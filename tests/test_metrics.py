"""/metrics: who may read it, what it counts, and that the numbers move across processes."""

import fcntl
import os
import subprocess
import sys
import threading

import httpx
import pytest
from django.db import connection
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from booking_api.metrics import exposition
from core import metrics_archive
from core.decision_queue import send_wake
from core.models import Booking
from core.show_lock import show_lock
from tests.factories import ShowFactory, UserFactory
from tests.harness import procs, service
from tests.harness.polling import poll_until_final
from tests.harness.procs import wait_until
from tests.harness.servers import PrivateRedis
from tests.harness.service import broker_at

TOKEN = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}


def samples(text: str) -> dict:
    """{(sample name, frozenset of label pairs): value} of a Prometheus text exposition."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


# ---- access ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_are_refused_by_default(api, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW_IPS = []
    response = api.get("/metrics")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.django_db
def test_metrics_need_the_right_bearer_token(api, settings):
    settings.METRICS_ALLOW_IPS = []
    missing = api.get("/metrics")
    wrong = api.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing["WWW-Authenticate"].startswith("Bearer")
    ok = api.get("/metrics", **TOKEN)
    assert ok.status_code == 200
    assert ok["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_metrics_are_served_to_an_allowed_network_without_a_token(api, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOW_IPS = ["10.0.0.0/8"]
    assert api.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert api.get("/metrics", REMOTE_ADDR="192.0.2.1").status_code == 403


# ---- what is counted (in this process) ------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_counted_by_route_pattern_and_status(api):
    before = samples(api.get("/metrics", **TOKEN).content.decode())
    api.get("/api/v1/movies")
    api.get("/api/v1/movies/")
    api.get("/api/v1/movies/999999")
    api.get("/no/such/route")
    after = samples(api.get("/metrics", **TOKEN).content.decode())

    def delta(route, status):
        key = {"method": "GET", "route": route, "status": str(status)}
        return value(after, "http_requests_total", **key) - value(before, "http_requests_total", **key)

    # Both spellings are one series, and the id is not part of the route.
    assert delta("/api/v1/movies", 200) == 2
    assert delta("/api/v1/movies/<id:movie_id>", 404) == 1
    assert delta("unmatched", 404) == 1


@pytest.mark.django_db
def test_pending_bookings_per_show_are_read_from_postgresql(api, settings):
    settings.METRICS_PENDING_TOP_SHOWS = 2
    busy, busier, quiet = ShowFactory(), ShowFactory(), ShowFactory()
    user = UserFactory()
    for show, count in ((busy, 2), (busier, 3), (quiet, 1)):
        for _ in range(count):
            Booking.objects.create(user=user, show=show, quantity=1)
    scraped = samples(api.get("/metrics", **TOKEN).content.decode())
    assert value(scraped, "booking_pending") == 6
    assert value(scraped, "booking_pending_by_show", show_id=str(busier.pk)) == 3
    assert value(scraped, "booking_pending_by_show", show_id=str(busy.pk)) == 2
    # Only the top 2 shows are exported one by one.
    assert ("booking_pending_by_show", frozenset({("show_id", str(quiet.pk))})) not in scraped
    assert value(scraped, "booking_pending_oldest_age_seconds") >= 0
    assert value(scraped, "booking_metrics_source_up", source="database") == 1
    assert value(scraped, "booking_metrics_source_up", source="broker") == 1


# ---- across processes: gunicorn workers and a Celery worker ---------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_metrics_move_when_a_worker_decides_bookings(live_stack):
    show = ShowFactory(screen__rows=2, screen__seats_per_row=4)
    alice, bob = UserFactory(), UserFactory()

    def scrape() -> dict:
        with live_stack.client() as client:
            response = client.get("/metrics", headers={"Authorization": "Bearer test-metrics-token"})
        assert response.status_code == 200, response.text
        return samples(response.text)

    def scrape_when(predicate, *, what: str) -> dict:
        found = {}

        def check():
            found.clear()
            found.update(scrape())
            return predicate(found)

        wait_until(check, timeout=15, what=what)
        return found

    before = scrape()
    # While the show's lock is held elsewhere the bookings stay pending and the worker waits.
    lock = show_lock(show.pk)
    assert lock.acquire()
    try:
        with live_stack.client(alice) as a, live_stack.client(bob) as b:
            ids = [
                a.post("/api/v1/bookings", json={"show": show.pk, "seats": ["A1", "A2"]}).json()["id"],
                b.post("/api/v1/bookings", json={"show": show.pk, "seats": ["A2"]}).json()["id"],
                b.post("/api/v1/bookings", json={"show": show.pk, "quantity": 2}).json()["id"],
            ]
            waiting = scrape_when(
                lambda s: value(s, "booking_show_lock_busy_total") > value(before, "booking_show_lock_busy_total"),
                what="the worker to find the show lock busy",
            )
    finally:
        lock.release()
    assert value(waiting, "booking_pending_by_show", show_id=str(show.pk)) == 3
    assert (
        value(waiting, "booking_accepted_total", kind="seats") - value(before, "booking_accepted_total", kind="seats")
        == 2
    )
    assert (
        value(waiting, "booking_accepted_total", kind="quantity")
        - value(before, "booking_accepted_total", kind="quantity")
        == 1
    )
    assert value(waiting, "booking_task_retries_total", reason="lock_busy") > value(
        before, "booking_task_retries_total", reason="lock_busy"
    )

    with live_stack.client(alice) as a, live_stack.client(bob) as b:
        outcomes = [poll_until_final(a, ids[0]), poll_until_final(b, ids[1]), poll_until_final(b, ids[2])]
    assert [(o["status"], o["failure_reason"]) for o in outcomes] == [
        ("confirmed", None),
        ("failed", "seats_unavailable"),
        ("confirmed", None),
    ]
    # Counted after the decisions commit, just after the poll may have seen them.
    after = scrape_when(
        lambda s: (
            value(s, "booking_decision_latency_seconds_count")
            >= value(before, "booking_decision_latency_seconds_count") + 3
        ),
        what="the decisions to be counted",
    )

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("booking_decisions_total", outcome="confirmed", reason="none") == 2
    assert delta("booking_decisions_total", outcome="failed", reason="seats_unavailable") == 1
    assert delta("booking_decision_latency_seconds_count") == 3
    # They waited for the lock, so each decision took more than a moment after acceptance.
    assert delta("booking_decision_latency_seconds_bucket", le="0.05") < 3
    assert ("booking_pending_by_show", frozenset({("show_id", str(show.pk))})) not in after
    assert delta("http_requests_total", method="POST", route="/api/v1/bookings", status="202") == 3


@pytest.mark.django_db
def test_client_chosen_methods_and_paths_do_not_create_series(api):
    """Every label of the request metrics comes from a closed set: made-up methods count as
    `OTHER` and unknown paths as `unmatched`, so a client cannot grow the series without
    bound (each series costs memory in every process and in Prometheus)."""

    def request_series(scraped: dict) -> set:
        return {key for key in scraped if key[0] in ("http_requests_total", "http_request_duration_seconds_count")}

    before = request_series(samples(api.get("/metrics", **TOKEN).content.decode()))
    for n in range(60):
        api.generic(f"BREW{n}", "/api/v1/movies")
        api.generic(f"X-{n}", f"/made/up/{n}")
        api.get(f"/api/v1/no-such-{n}")
        api.get(f"/api/v1/movies/{n}")  # one route pattern, whatever the id
    after = samples(api.get("/metrics", **TOKEN).content.decode())
    new = request_series(after) - before

    labels = [dict(key[1]) for key in new]
    assert {label["method"] for label in labels} <= {"GET", "OTHER"}
    assert {label["route"] for label in labels} <= {"/api/v1/movies", "/api/v1/movies/<id:movie_id>", "unmatched"}
    # At most: OTHER on movies (405) and on unmatched (404), GET unmatched 404, GET movie
    # 200 and 404, the metrics scrape itself; each in both metrics.
    assert len(new) <= 12, sorted(labels, key=str)
    assert value(after, "http_requests_total", method="OTHER", route="unmatched", status="404") >= 60


# ---- recycled processes: their counts stay, their files do not pile up ----------------------

# Two archive files, two files (counter, histogram) per live process, and two of a process
# that has just exited and is being merged.
ARCHIVES = 2


def metric_files(directory) -> list[str]:
    return sorted(path.name for path in directory.glob("*.db"))


def read_counted(directory) -> dict:
    """What /metrics would add up from `directory`: every file, as a scrape reads them."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    with metrics_archive.reading(str(directory)):
        return samples(generate_latest(registry).decode())


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_recycled_web_workers_leave_their_counts_but_not_their_files(tmp_path):
    """gunicorn with one worker recycled after every 3 requests: 15 requests pass through 5
    workers, every one of them counted, and only the archive is left, not 2 files per worker."""
    directory = tmp_path / "metrics"
    web, base_url = service.start_web(tmp_path, workers=1, WEB_MAX_REQUESTS=3, PROMETHEUS_MULTIPROC_DIR=directory)
    try:
        for _ in range(15):
            # A connection each: a recycled worker closes its connections.
            assert httpx.get(f"{base_url}/api/v1/movies", headers={"Connection": "close"}, timeout=30).is_success
        # The last worker exits as well: all that is left is the archive.
        web.stop()
        files = metric_files(directory)
        counted = read_counted(directory)
    finally:
        web.stop()
    assert web.log().count("Autorestarting worker") >= 4
    assert files == ["counter_archive.db", "histogram_archive.db"]
    assert value(counted, "http_requests_total", method="GET", route="/api/v1/movies", status="200") == 15
    assert value(counted, "http_request_duration_seconds_count", method="GET", route="/api/v1/movies") == 15


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_recycled_celery_pool_processes_leave_their_counts_but_not_their_files(tmp_path):
    """A Celery worker whose pool process is replaced after every task decides 5 shows'
    bookings in 5 processes: all 5 decisions are counted, and the directory holds the files
    of the live processes and the archive."""
    directory = tmp_path / "metrics"
    broker = PrivateRedis(tmp_path).start()
    worker = service.start_worker(
        tmp_path,
        concurrency=1,
        extra_args=("--max-tasks-per-child", "1"),
        CELERY_BROKER_URL=broker.url(),
        PROMETHEUS_MULTIPROC_DIR=directory,
    )
    try:
        shows = [ShowFactory() for _ in range(5)]
        user = UserFactory()
        for show in shows:
            Booking.objects.create(user=user, show=show, quantity=1)
        with broker_at(broker.url()):
            for show in shows:
                send_wake(show_id=show.pk)
        procs.wait_until(
            lambda: not Booking.objects.filter(status="pending").exists(), timeout=60, what="the decisions", proc=worker
        )
        # Each pool process exits after its task and a new one takes its place: the files
        # stay at those of the live processes (the main one and a pool process) and the
        # archive, with room for one process being merged.
        procs.wait_until(
            lambda: (
                len(metric_files(directory)) <= ARCHIVES + 6
                and value(read_counted(directory), "booking_decision_latency_seconds_count") == 5
            ),
            timeout=15,
            what="the exited processes' files merged, their decisions counted",
        )
        # The worker stops: every one of its processes has exited and all is in the archive.
        worker.stop()
        files = metric_files(directory)
        counted = read_counted(directory)
    finally:
        worker.stop()
        broker.kill()
    assert "Process cleanup failed" not in worker.log()
    assert files == ["counter_archive.db", "histogram_archive.db"]
    assert value(counted, "booking_decisions_total", outcome="confirmed", reason="none") == 5
    assert value(counted, "booking_decision_latency_seconds_count") == 5


COUNTING_PROCESS = """
import sys
from prometheus_client import Counter, values
from core import metrics_archive
values.ValueClass = values.MultiProcessValue(process_identifier=metrics_archive.process_identifier)
Counter("lock_test", "A counter of the lock test.").inc(int(sys.argv[1]))
"""


def _count_in_a_process(directory, amount: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run([sys.executable, "-c", COUNTING_PROCESS, str(amount)], cwd=procs.ROOT, env=env, check=True)


def _scrape_into(scraped: list) -> None:
    try:
        scraped.append(exposition().decode())
    finally:
        connection.close()  # this thread's own


@pytest.mark.django_db
def test_merges_and_scrapes_exclude_each_other(tmp_path, settings):
    """A merge waits for the scrapes reading the directory, and a scrape for a running merge:
    a scrape never sees an exited process's counts both in its file and in the archive, or
    in neither (Prometheus would read either as a counter reset)."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    _count_in_a_process(directory, 2)
    _count_in_a_process(directory, 3)
    assert len(metric_files(directory)) == 2

    with metrics_archive.reading(str(directory)):
        merge = threading.Thread(target=metrics_archive.archive_exited, args=(str(directory),))
        merge.start()
        merge.join(timeout=0.5)
        assert merge.is_alive()  # waiting for the scrape
        assert len(metric_files(directory)) == 2
    merge.join(timeout=10)
    assert metric_files(directory) == ["counter_archive.db"]
    assert value(read_counted(directory), "lock_test_total") == 5

    settings.PROMETHEUS_MULTIPROC_DIR = str(directory)
    scraped = []
    with (directory / metrics_archive.LOCK_FILE).open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a merge is running
        scrape = threading.Thread(target=_scrape_into, args=(scraped,))
        scrape.start()
        scrape.join(timeout=0.5)
        assert scrape.is_alive()  # waiting for the merge
        fcntl.flock(lock, fcntl.LOCK_UN)
    scrape.join(timeout=10)
    assert value(samples(scraped[0]), "lock_test_total") == 5
