"""The metrics files of exited processes, merged into one archive file per metric type.

In prometheus_client's multiprocess mode every process writes its own files
(`counter_<host>-<pid>.db`, `histogram_<host>-<pid>.db`) and a scrape reads them all, those
of exited processes included, since their counts still belong in the totals. gunicorn and
Celery replace their processes now and then, so the files would pile up for ever and every
scrape would read more of them. Instead, the files of a process of this host that has
exited are added into `counter_archive.db` and `histogram_archive.db` and removed: the
totals stay the same and the directory holds about two files per live process.

Merges take an exclusive lock on a file in the directory and a scrape reads under the
shared lock, so a scrape never sees a process's counts in both its file and the archive, or
in neither (either would make a counter jump, which Prometheus reads as a reset). No Django
here: gunicorn's arbiter calls this without loading the service.
"""

import contextlib
import fcntl
import glob
import os
import socket

from prometheus_client import multiprocess
from prometheus_client.mmap_dict import MmapedDict, mmap_key

# Containers sharing the directory (docker compose) each number their processes from 1: the
# host name keeps two processes from writing one file ("_" separates the file name's parts).
HOST = socket.gethostname().replace("_", "-")
# Types whose values add up across processes; this service has no multiprocess gauges.
MERGED_TYPES = ("counter", "histogram")
LOCK_FILE = "archive.lock"


def process_identifier(pid: int | None = None) -> str:
    return f"{HOST}-{pid or os.getpid()}"


@contextlib.contextmanager
def _lock(directory: str, operation: int):
    with open(os.path.join(directory, LOCK_FILE), "ab") as lock_file:
        fcntl.flock(lock_file, operation)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def reading(directory: str):
    """Hold while reading the directory: no merge runs meanwhile."""
    return _lock(directory, fcntl.LOCK_SH)


def archive_exited(directory: str, *, exiting: int | None = None) -> int:
    """Merge the files of this host's processes that have exited, and those of `exiting`
    (the caller's own pid, when it counts nothing more), into the archive; returns how many
    processes' files were merged."""
    with _lock(directory, fcntl.LOCK_EX):
        files: dict[str, list[str]] = {}
        merged = set()
        for path in glob.glob(os.path.join(directory, "*.db")):
            kind, _, owner = os.path.basename(path)[: -len(".db")].partition("_")
            host, _, pid = owner.rpartition("-")
            if kind not in MERGED_TYPES or host != HOST or not pid.isdigit():
                continue
            if int(pid) != exiting and _alive(int(pid)):
                continue
            files.setdefault(kind, []).append(path)
            merged.add(owner)
        for kind, paths in files.items():
            _merge_into_archive(os.path.join(directory, f"{kind}_archive.db"), paths)
        for owner in merged:
            multiprocess.mark_process_dead(owner, directory)  # its live gauges, were there any
        return len(merged)


def _merge_into_archive(archive: str, paths: list[str]) -> None:
    sources = [archive, *paths] if os.path.exists(archive) else paths
    # Raw values (histogram buckets not yet cumulative), as the processes wrote them.
    metrics = multiprocess.MultiProcessCollector.merge(sources, accumulate=False)
    # Not named *.db, so that a scrape never reads it half written.
    pending = f"{archive}.new"
    with contextlib.suppress(FileNotFoundError):
        os.remove(pending)
    values = MmapedDict(pending)
    try:
        for metric in metrics:
            for sample in metric.samples:
                labels = sample.labels
                key = mmap_key(metric.name, sample.name, list(labels), list(labels.values()), metric.documentation)
                values.write_value(key, sample.value, 0.0)
    finally:
        values.close()
    os.replace(pending, archive)
    # A crash before these removals would count those processes twice: a window of a few
    # system calls, once per exited process.
    for path in paths:
        os.remove(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process has that pid now
    return True
