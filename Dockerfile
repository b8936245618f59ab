# The dlgrade service images, two targets of one file:
#   web     dlgrade web, dlgrade migrate and the admin commands; no PyTorch in it
#   worker  dlgrade worker: the web's packages plus the worker's and PyTorch (the CPU or
#           CUDA build: whichever the wheel folder holds)
# Built by scripts/build-images.sh (docs/deployment.md), which makes the Debian base image
# (BASE, debootstrap + docker import: no registry needed) and stages this build's context:
#   wheels/web/      the web role's wheels and requirements.txt (exact pins)
#   wheels/worker/   the worker's other wheels, requirements.txt, data.txt (--no-deps)
#   dist/            dlgrade's own wheel
# Nothing is downloaded while building: every package comes from those folders.
#
# Workers grade in sandbox containers that they start through the HOST's Docker engine
# (the socket is mounted). Those containers are made from the sandbox image
# (sandbox/images/Dockerfile), not from this one, and every path the worker asks the
# engine to bind-mount is resolved on the host: see docker-compose.yml.
ARG BASE=dlgrade-base:latest

FROM ${BASE} AS web-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
RUN python3 -m venv /opt/venv
COPY wheels/web/ /tmp/wheels/web/
RUN /opt/venv/bin/pip install -q --no-index --find-links /tmp/wheels/web \
      -r /tmp/wheels/web/requirements.txt \
 && rm -rf /tmp/wheels

# What both targets share: an unprivileged user and the data folders. Workers reach the
# Docker socket through the socket's group, given with `group_add` in docker-compose.yml.
FROM ${BASE} AS service
RUN groupadd --gid 10000 dlgrade \
 && useradd --uid 10000 --gid 10000 --create-home --shell /usr/sbin/nologin dlgrade \
 && mkdir -p /srv/dlgrade/data /srv/dlgrade/work \
 && chown -R dlgrade:dlgrade /srv/dlgrade
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8

FROM service AS web
COPY --from=web-deps /opt/venv /opt/venv
COPY dist/ /tmp/dist/
RUN /opt/venv/bin/pip install -q --no-index --no-deps --disable-pip-version-check \
      /tmp/dist/*.whl \
 && rm -rf /tmp/dist /root/.cache \
 && ! /opt/venv/bin/python -c 'import torch' 2>/dev/null
USER dlgrade
WORKDIR /home/dlgrade
EXPOSE 8000
CMD ["dlgrade", "web", "--host", "0.0.0.0", "--port", "8000"]

FROM web-deps AS worker-deps
COPY wheels/worker/ /tmp/wheels/worker/
RUN /opt/venv/bin/pip install -q --no-index --find-links /tmp/wheels/worker \
      -r /tmp/wheels/worker/requirements.txt \
 && /opt/venv/bin/pip install -q --no-index --no-deps --find-links /tmp/wheels/worker \
      -r /tmp/wheels/worker/data.txt \
 && rm -rf /tmp/wheels

FROM service AS worker
COPY --from=worker-deps /opt/venv /opt/venv
COPY dist/ /tmp/dist/
RUN /opt/venv/bin/pip install -q --no-index --no-deps --disable-pip-version-check \
      /tmp/dist/*.whl \
 && rm -rf /tmp/dist /root/.cache \
 && /opt/venv/bin/python -c 'import torch, docker, sklearn'
USER dlgrade
WORKDIR /home/dlgrade
CMD ["dlgrade", "worker", "--queues", "cpu"]
