# Debian's pgbouncer, for docker compose's `pgbouncer` profile. Its pgbouncer.ini and
# userlist.txt are written at start by the `pgbouncer-config` service (manage.py
# pgbouncer_databases --ini) into the shared `pgbouncer` volume.
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pgbouncer \
    && rm -rf /var/lib/apt/lists/*
USER postgres
EXPOSE 6432
CMD ["pgbouncer", "/etc/pgbouncer/conf/pgbouncer.ini"]
