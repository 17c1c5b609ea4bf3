# news-monitor: the daemon in a small, non-root image.
#   docker build -t news-monitor .
#   docker run -d -p 127.0.0.1:8080:8080 -v news-monitor-data:/data news-monitor
# See README.md, "Run with Docker", and docker-compose.yml. Tested for real by
# scripts/container-test.sh (build, HEALTHCHECK, alert, restart on the volume, stop).
# No "# syntax=" line, no heredocs, no digest pin: CI builds with an old BuildKit and a
# locally built stand-in for python:3.12-slim (../shared/CONTAINER.md).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Dependencies first, in a layer of their own: rebuilt only when pyproject.toml changes, not
# on every code change. Then the package itself from the build context (hatchling needs
# pyproject.toml, README.md and monitor/); its source is removed again.
COPY pyproject.toml /tmp/src/
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/src/pyproject.toml', 'rb'))['project']['dependencies']))" >/tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
COPY README.md /tmp/src/
COPY monitor /tmp/src/monitor
RUN pip install --no-cache-dir --no-deps /tmp/src \
 && rm -rf /tmp/src \
 && pip check \
 && news-monitor --version

# A fixed, numeric uid/gid so that volume ownership is predictable on every host.
RUN groupadd --system --gid 10001 monitor \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /data \
      --shell /usr/sbin/nologin monitor \
 && mkdir -p /data /config \
 && chown 10001:10001 /data

# Default config (the repo's config/monitor.yaml); mount your own over it read-only.
# Its storage line is "${NEWS_MONITOR_STORAGE:-./data/monitor.db}": point it at the volume.
COPY config/monitor.yaml /config/monitor.yaml
ENV NEWS_MONITOR_CONFIG=/config/monitor.yaml \
    NEWS_MONITOR_STORAGE=/data/monitor.db

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

# The slim image has no curl: probe with Python's urllib. /healthz answers 503 with the
# reason (scheduler dead, database not writable, no feed polled for too long); the probe
# then exits 1 with that reason, which `docker inspect` shows under .State.Health.Log.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request as u\ntry:\n    print(u.urlopen('http://127.0.0.1:8080/healthz', timeout=4).read().decode().strip())\nexcept Exception as e:\n    sys.exit(f'{e} {e.read().decode().strip() if hasattr(e, \"read\") else \"\"}')"]

# No tini: the daemon is PID 1 itself (exec form, no shell in between) and installs its
# own SIGTERM/SIGINT handlers, so `docker stop` reaches it and it exits 0 within its
# 7 s stop budget. Its only children are its own parse workers, which it waits for
# itself (scripts/container-test.sh checks PID 1, zombies and `docker stop`'s exit code).
ENTRYPOINT ["news-monitor"]
CMD ["run", "-c", "/config/monitor.yaml", "--listen", "0.0.0.0:8080", "--log-format", "json"]
