# The reconciler image. Build: `docker build -t reconciler .`; run: `docker run reconciler`
# (the controller, `reconciler run`) or any subcommand (`docker run reconciler validate /repo`).
# Configuration comes from the environment and from files the host mounts (SSH key, CA
# bundle, tokens as *_FILE): nothing secret is ever baked into a layer.

FROM python:3.11-slim AS build
WORKDIR /src
# Only what the wheel is built from (see .dockerignore): tests and docs stay out.
COPY pyproject.toml setup.cfg README.md ./
COPY reconciler ./reconciler
# One wheel for reconciler, installed with its dependencies (and the Postgres driver) into a
# venv that the runtime stage copies whole: no compiler, pip cache or sources reach it.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
 && python -m venv /opt/reconciler \
 && /opt/reconciler/bin/pip install --no-cache-dir "$(echo /dist/reconciler-*.whl)[postgres]"

FROM python:3.11-slim
# git: GitPython drives the git binary; openssh-client: clones over ssh with a mounted key
# (and ssh-keygen checks SSH-signed commits); gnupg: checks (and signs) commits when a
# trusted keys file or a signing key is set.
# Unpinned on purpose: security updates of the slim base's Debian release should land.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client gnupg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 reconciler \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/reconciler \
      --create-home --shell /usr/sbin/nologin reconciler
COPY --from=build /opt/reconciler /opt/reconciler
ENV PATH=/opt/reconciler/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/reconciler \
    RECONCILER_STATE_DIR=/var/lib/reconciler \
    RECONCILER_LISTEN=0.0.0.0:8000
USER 10001:10001
WORKDIR /var/lib/reconciler
VOLUME ["/var/lib/reconciler"]
EXPOSE 8000
# /healthz answers 200 while the process and its scheduler run; no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request as r; port = os.environ.get('RECONCILER_LISTEN', ':8000').rsplit(':', 1)[-1]; r.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
ENTRYPOINT ["reconciler"]
CMD ["run"]
