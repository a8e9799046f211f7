"""The results: targets as ratios against same-run baselines, a Markdown report, the JSON
file and the flash sale's plot."""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        "unknown",
    )
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {"nproc": os.cpu_count(), "ram_gib": round(mem_kib / 2**20, 1), "cpu": model}


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def targets(results: dict) -> list[dict]:
    """Each target of the issue: the measured value, the same-run baseline, the ratio."""
    rows = []
    noop = results.get("noop_rate")
    http = results.get("http", {})

    def ratio_row(name, value, baseline, baseline_name, minimum, unit="req/s"):
        ratio = value / baseline if baseline else None
        rows.append(
            {
                "target": name,
                "value": f"{value:.0f} {unit}",
                "baseline": f"{baseline_name} {baseline:.0f} {unit}" if baseline else "-",
                "ratio": round(ratio, 2) if ratio is not None else None,
                "goal": f">= {minimum:g}x",
                "met": ratio is not None and ratio >= minimum,
            }
        )

    if "auth_me" in http and "bare_me" in http:
        ratio_row("GET /auth/me", http["auth_me"]["rate"], http["bare_me"]["rate"], "bare DRF + simplejwt me", 0.9)
    if "post" in http:
        ratio_row("POST /bookings", http["post"]["rate"], noop, "no-op", 0.6)
    if "seat_map" in http:
        ratio_row("GET /shows/{id}/seats (500 seats)", http["seat_map"]["rate"], noop, "no-op", 0.5)
    if "booking_get" in http:
        ratio_row("GET /bookings/{id}", http["booking_get"]["rate"], noop, "no-op", 0.5)
    if "backlog" in results and "celery_noop" in results:
        ratio_row(
            "backlog drain, one show",
            results["backlog"]["rate"],
            results["celery_noop"]["rate"],
            "Celery no-op",
            5,
            unit="/s",
        )
    if "flash_sale" in results:
        flash = results["flash_sale"]
        p99 = flash["accept_to_decide_ms"]["p99"]
        rows.append(
            {
                "target": "flash sale: acceptance-to-decision p99",
                "value": f"{p99:.0f} ms at {flash['accepted_per_s']:.0f} accepted/s",
                "baseline": "-",
                "ratio": None,
                "goal": "< 1000 ms",
                "met": p99 is not None and p99 < 1000,
            }
        )
        tail = flash["last_decision_after_last_acceptance_s"]
        rows.append(
            {
                "target": "flash sale: last decision after last acceptance",
                "value": f"{tail:.2f} s",
                "baseline": "-",
                "ratio": None,
                "goal": "<= 2 s",
                "met": tail is not None and tail <= 2,
            }
        )
        rows.append(
            {
                "target": "flash sale: 5xx",
                "value": str(flash["errors_5xx"]),
                "baseline": "-",
                "ratio": None,
                "goal": "0",
                "met": flash["errors_5xx"] == 0,
            }
        )
    if "many_shows" in results and "flash_sale" in results:
        # Issue 11, target 1: many shows selling at once decide as fast as one show does.
        many_wave, flash_wave = results["many_shows"], results["flash_sale"]
        many, flash = many_wave["accept_to_decide_ms"]["p99"], flash_wave["accept_to_decide_ms"]["p99"]
        ratio = many / flash if many is not None and flash else None
        rows.append(
            {
                "target": f"many shows ({many_wave['shows']}): acceptance-to-decision p99",
                "value": f"{many:.0f} ms at {many_wave['accepted_per_s']:.0f} accepted/s",
                "baseline": f"flash sale p99 {flash:.0f} ms at {flash_wave['accepted_per_s']:.0f} accepted/s",
                "ratio": round(ratio, 2) if ratio is not None else None,
                "goal": "<= 2x and < 300 ms",
                "met": ratio is not None and ratio <= 2 and many < 300,
            }
        )
    if "fairness" in results:
        # Issue 11, target 2: a show fed without pause never holds up another show's first decision.
        fair = results["fairness"]
        worst = fair["first_decision_ms"]["max"]
        rows.append(
            {
                "target": f"fairness: other shows' first decision while one show is fed ({fair['others']} shows)",
                "value": f"max {worst:.0f} ms, p99 {fair['first_decision_ms']['p99']:.0f} ms",
                "baseline": f"hot show decided at {fair['hot_decided_per_s']:.0f}/s",
                "ratio": round(worst / 500, 2) if worst is not None else None,
                "goal": "max < 500 ms",
                "met": worst is not None and worst < 500,
            }
        )
    if "overload" in results:
        top = results["overload"]["steps"][-1]
        p99 = top["accepted_latency_ms"]["p99"]
        rows.append(
            {
                "target": f"overload {top['multiplier']}x: accepted POST p99",
                "value": f"{p99} ms ({top['answered_2xx_per_s']:.0f}/s answered, {top['shed_per_s']:.0f}/s shed "
                f"of {top['sent_per_s']:.0f}/s sent)",
                "baseline": f"sustainable {results['overload']['sustainable_per_s']:.0f} req/s",
                "ratio": round(top["sent_per_s"] / results["overload"]["sustainable_per_s"], 2),
                "goal": "< 1000 ms",
                "met": p99 is not None and p99 < 1000,
            }
        )
        errors = sum(step["other_5xx_or_errors"] for step in results["overload"]["steps"])
        rows.append(
            {
                "target": "overload: other 5xx or connection errors; accepted bookings lost",
                "value": f"{errors}; {results['overload']['lost']}",
                "baseline": "-",
                "ratio": None,
                "goal": "0; 0",
                "met": errors == 0 and results["overload"]["lost"] == 0,
            }
        )
    rows.append(
        {
            "target": "invariant violations (all scenarios)",
            "value": str(len(results["violations"])),
            "baseline": "-",
            "ratio": None,
            "goal": "0",
            "met": not results["violations"],
        }
    )
    if "memory_growth" in results:
        unbounded = [r for r in results["memory_growth"] if not r["bounded"]]
        rows.append(
            {
                "target": f"memory over the {results['soak']['seconds']} s soak",
                "value": f"{len(unbounded)} of {len(results['memory_growth'])} processes grew",
                "baseline": "-",
                "ratio": None,
                "goal": "none grows without bound",
                "met": not unbounded,
            }
        )
    return rows


def _ms(latency: dict) -> str:
    return f"p50 {latency['p50']} ms, p99 {latency['p99']} ms"


def _polls_per_booking(wave: dict) -> str:
    # Absent from results written before the queue position existed.
    polls = wave.get("polls_per_booking")
    if not polls or polls["mean"] is None:
        return ""
    return (
        f" ({polls['mean']} per booking, at most {polls['max']}; deepest queue position at acceptance "
        f"{polls['max_queue_position']})"
    )


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"Run {results['started']} ({results['mode']}), commit `{results['commit']}`, "
        f"{m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, load average "
        f"{results['load_before']:.2f} before / {results['load_after']:.2f} after; "
        f"web: {results['web_setup']}; worker: {results['worker_setup']}.",
        "",
        "| target | measured | same-run baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["targets"]:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else ""
        lines.append(
            f"| {row['target']} | {row['value']} | {row['baseline']} | {ratio} | {row['goal']} | "
            f"{'yes' if row['met'] else '**no**'} |"
        )
    lines += ["", "| measurement | rate | latency | client CPU |", "|---|---|---|---|"]
    http_rows = [
        ("noop", "authenticated no-op `GET /bench/noop` (the baseline)"),
        ("auth_me", "`GET /api/v1/auth/me`"),
        ("bare_me", "bare DRF + simplejwt `GET /me` (bench/bare, same gunicorn settings)"),
        ("post", "`POST /api/v1/bookings` (closed loop, no polling)"),
        ("seat_map", "`GET /api/v1/shows/{id}/seats` (500 seats)"),
        ("booking_get", "`GET /api/v1/bookings/{id}`"),
    ]
    http = results.get("http") or {"noop": results["noop"]}
    for key, label in http_rows:
        if key in http:
            r = http[key]
            lines.append(
                f"| {label} | {r['rate']:.0f} req/s ({r['concurrency']} connections) | {_ms(r['latency_ms'])} | "
                f"{r['client_cpu_pct']:.0f} % |"
            )
    if "pg_raw" in results:
        r = results["pg_raw"]
        lines.append(
            f"| raw PostgreSQL submit transaction (psycopg2, {r['threads']} threads) | {r['rate']:.0f} tx/s | | |"
        )
    if "celery_noop" in results:
        r = results["celery_noop"]
        lines.append(
            f"| Celery no-op tasks ({r['tasks']} queued, then the worker started) | {r['rate']:.0f} tasks/s | | |"
        )
    if "backlog" in results:
        r = results["backlog"]
        lines.append(
            f"| backlog drain, one show ({r['bookings']} pending; {r['confirmed']} confirmed, {r['failed']} failed) "
            f"| {r['rate']:.0f} decisions/s | {r['seconds']} s in all | |"
        )
    if "worker_scaling" in results:
        r = results["worker_scaling"]
        for processes, run in r["runs"].items():
            lines.append(
                f"| decisions across {r['shows']} shows ({r['per_show']} pending each), {processes} worker "
                f"process(es) | {run['rate']:.0f} decisions/s | {run['seconds']} s in all | |"
            )
    for key, label in (("flash_sale", "Flash sale"), ("many_shows", "Many shows")):
        if key not in results:
            continue
        r = results[key]
        lines += [
            "",
            f"**{label}**: {r['users']} users, one booking each, {r['shows']} show(s), {r['capacity']} seats; "
            f"{r['accepted']} accepted at {r['accepted_per_s']:.0f}/s (POST {_ms(r['post_latency_ms'])}); "
            f"acceptance to decision {_ms(r['accept_to_decide_ms'])}; last decision "
            f"{r['last_decision_after_last_acceptance_s']} s after the last acceptance; {r['confirmed']} confirmed, "
            f"{r['failed']} failed, {r['held']} seats held, {r['sold_out_shows']} show(s) sold out; "
            f"{r['polls']} polls{_polls_per_booking(r)}; {r['errors_5xx']} 5xx; "
            f"client CPU {r['cpu_pct'].get('benchmark client', 0):.0f} %.",
        ]
    if "fairness" in results:
        r = results["fairness"]
        lines += [
            "",
            f"**Fairness**: one show fed without pause by {r['feeders']} clients (POST quantity 1, closed loop; "
            f"{r['hot_accepted']} accepted, decided at {r['hot_decided_per_s']:.0f}/s) while {r['others']} other "
            f"shows get one booking each, {r['others_accepted']} accepted; their first decision after acceptance "
            f"p50 {r['first_decision_ms']['p50']} ms, p99 {r['first_decision_ms']['p99']} ms, "
            f"max {r['first_decision_ms']['max']} ms; {r['errors_5xx']} 5xx.",
        ]
    if "overload" in results:
        o = results["overload"]
        lines += [
            "",
            f"**Overload**: `POST /bookings` arriving open loop at multiples of the sustainable rate "
            f"({o['sustainable_per_s']:.0f} req/s, the closed-loop POST rate above), {o['connections']} connections, "
            f"{o['step_seconds']} s per step; {o['accepted']} accepted, {o['lost']} lost, all decided "
            f"({o['confirmed']} confirmed, {o['failed']} failed).",
            "",
            "| offered | sent | answered 2xx | shed (503/429 + Retry-After) | other 5xx | 2xx latency | shed latency "
            "| client send lateness p99 |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in o["steps"]:
            lines.append(
                f"| {r['multiplier']}x = {r['offered_per_s']:.0f}/s | {r['sent_per_s']:.0f}/s | "
                f"{r['answered_2xx_per_s']:.0f}/s | {r['shed_per_s']:.0f}/s | {r['other_5xx_or_errors']} | "
                f"{_ms(r['accepted_latency_ms'])} | {_ms(r['shed_latency_ms'])} | "
                f"{r['client_send_lateness_p99_ms']} ms |"
            )
    if results.get("peak_rss"):
        lines += ["", "| process | peak RSS | processes |", "|---|---|---|"]
        for role, r in results["peak_rss"].items():
            lines.append(f"| {role} | {r['peak_mib']} MiB | {r['processes']} |")
    if results.get("memory_growth"):
        lines += ["", "| process (soak) | first minute | last minute | growth | bounded |", "|---|---|---|---|---|"]
        for r in results["memory_growth"]:
            lines.append(
                f"| {r['role']} ({r['pid']}) | {r['first_mib']} MiB | {r['last_mib']} MiB | {r['growth_mib']} MiB "
                f"| {'yes' if r['bounded'] else '**no**'} |"
            )
    if results["violations"]:
        lines += ["", "Violations:", *[f"- {v}" for v in results["violations"][:50]]]
    return "\n".join(lines) + "\n"


def plot(series: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    t = series["t"]
    top.plot(t, series["accepted"], label="accepted (202) /s", marker=".")
    top.plot(t, series["decided"], label="decided /s", marker=".")
    top.plot(t, series["polls"], label="polls /s", linestyle="--")
    top.set_ylabel("per second")
    top.legend(loc="upper right")
    top.grid(alpha=0.3)
    top.set_title(title)

    def clean(values):
        return [v if v is not None else float("nan") for v in values]

    bottom.plot(t, clean(series["post_p50_ms"]), label="POST latency p50", marker=".")
    bottom.plot(t, clean(series["post_p99_ms"]), label="POST latency p99", marker=".")
    bottom.plot(t, clean(series["wait_p99_ms"]), label="acceptance to decision p99", marker=".")
    bottom.axhline(1000, color="grey", linestyle=":", label="1 s target")
    bottom.set_yscale("log")
    bottom.set_ylabel("ms")
    bottom.set_xlabel("seconds since the first acceptance")
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_overload(overload: dict, path: Path, title: str) -> None:
    """The overload curve: per step, offered and answered rates (top), latencies (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = overload["steps"]
    x = [s["sent_per_s"] for s in steps]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    top.plot(x, x, label="sent (offered) /s", linestyle=":", color="grey")
    top.plot(x, [s["answered_2xx_per_s"] for s in steps], label="answered 2xx /s", marker="o")
    top.plot(x, [s["shed_per_s"] for s in steps], label="shed (503 overloaded / 429) /s", marker="o")
    top.plot(x, [s["other_5xx_or_errors"] / overload["step_seconds"] for s in steps], label="other 5xx /s", marker="x")
    for s in steps:
        top.annotate(
            f"{s['multiplier']}x",
            (s["sent_per_s"], s["answered_2xx_per_s"]),
            textcoords="offset points",
            xytext=(0, 6),
            ha="center",
            fontsize=8,
        )
    top.set_ylabel("requests per second")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    top.set_title(title)

    def values(key, pct):
        return [s[key][pct] if s[key][pct] is not None else float("nan") for s in steps]

    bottom.plot(x, values("accepted_latency_ms", "p50"), label="2xx p50", marker="o")
    bottom.plot(x, values("accepted_latency_ms", "p99"), label="2xx p99", marker="o")
    bottom.plot(x, values("shed_latency_ms", "p99"), label="shed p99", marker="x")
    bottom.axhline(1000, color="grey", linestyle=":", label="1 s target (2xx p99)")
    bottom.set_yscale("log")
    bottom.set_ylabel("ms")
    bottom.set_xlabel("requests sent per second (POST /bookings, open loop)")
    bottom.legend(loc="upper left")
    bottom.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict, out_dir: Path, *, name: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{name}.json", "md": out_dir / f"{name}.md"}
    paths["json"].write_text(json.dumps(results, indent=1, default=str) + "\n")
    paths["md"].write_text(markdown(results))
    if "flash_sale" in results:
        paths["png"] = out_dir / f"{name}-flash-sale.png"
        flash = results["flash_sale"]
        plot(
            flash["series"],
            paths["png"],
            f"Flash sale: {flash['users']} users, {flash['capacity']} seats "
            f"({results['mode']} run {results['started']})",
        )
    if "overload" in results:
        paths["overload_png"] = out_dir / f"{name}-overload.png"
        plot_overload(
            results["overload"],
            paths["overload_png"],
            f"Overload: POST /bookings, {results['overload']['connections']} connections "
            f"({results['mode']} run {results['started']})",
        )
    return paths
