# The hub image: Airflow 3 + Overstap, pinned from requirements.lock.
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends xmlsec1 openssl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/overstap
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir uv && uv pip install --system --no-cache -r requirements.lock
COPY overstap ./overstap
COPY connectors ./connectors
COPY mappings ./mappings
COPY xsd ./xsd
COPY dags ./dags
COPY plugins ./plugins
RUN uv pip install --system --no-cache --no-deps . && useradd --system --uid 50000 overstap
USER overstap
