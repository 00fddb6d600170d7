# order-watcher: the service image. Also runs the vendor simulator (`simulate`) and the
# other commands: `docker run IMAGE check --config /etc/order-watcher/watcher.toml`.
#
# The config file must set [http] listen = "0.0.0.0:9108": EXPOSE, the HEALTHCHECK below,
# the Kubernetes probes and Prometheus all expect the endpoints there. The working
# directory /var/lib/order-watcher is the only place the service writes (the SQLite store);
# mount a volume on it.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Fixed ids, so volumes and the Kubernetes securityContext (runAsUser 10001) agree.
RUN groupadd --system --gid 10001 watcher \
 && useradd --system --uid 10001 --gid watcher --no-create-home \
        --home-dir /var/lib/order-watcher --shell /usr/sbin/nologin watcher \
 && mkdir -p /var/lib/order-watcher \
 && chown watcher:watcher /var/lib/order-watcher

# The locked runtime dependencies first, in a layer of their own: a change to the code
# leaves it cached, and a build next month installs exactly what was tested.
WORKDIR /src
COPY requirements/runtime.txt ./requirements/runtime.txt
RUN pip install --require-hashes --requirement requirements/runtime.txt

# Then the code alone, with no dependency resolved again. Tests, docs and deploy files
# stay out (.dockerignore); the simulator stays in, for `simulate` and the compose demo.
COPY pyproject.toml README.md ./
COPY watcher ./watcher
RUN pip install --no-deps . \
 && rm -rf /src

WORKDIR /var/lib/order-watcher
USER 10001:10001

EXPOSE 9108

# /healthz answers 200 while the process runs; urllib raises (exit 1) on anything else.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4)"]

ENTRYPOINT ["order-watcher"]
CMD ["run"]
