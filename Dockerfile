# The mail2sms gateway as an image, built from this repository:
#   docker build -t mail2sms .
#   docker run --rm -p 127.0.0.1:2525:2525 -p 127.0.0.1:8025:8025 \
#     -e MAIL2SMS_HTTP__ADMIN_TOKEN=something-secret mail2sms
# Dependencies come from requirements.lock (exact versions and hashes; `make lock` renews it
# after a change to pyproject.toml). tests/test_image.py runs the pip steps below without Docker.

# 1. The wheel of this repository, built with the locked build backend.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements-build.lock ./
RUN pip install --require-hashes --only-binary :all: -r requirements-build.lock
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY migrations ./migrations
RUN pip wheel --no-deps --no-build-isolation --wheel-dir dist .

# 2. The runtime: the locked dependencies and that wheel, nothing else.
FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /src
COPY requirements.lock ./
RUN pip install --require-hashes --only-binary :all: -r requirements.lock
COPY --from=build /src/dist ./dist
RUN pip install --no-deps --no-index dist/mail2sms-*.whl

RUN useradd --system --create-home --uid 10001 mail2sms \
    && mkdir -p /var/lib/mail2sms/data \
    && chown -R mail2sms:mail2sms /var/lib/mail2sms \
    && rm -rf /src
# Listen on every interface of the container; publish the ports where you want them.
# Off loopback the API's writes need a token: set MAIL2SMS_HTTP__ADMIN_TOKEN, or `serve` stops.
ENV MAIL2SMS_SMTP__HOST=0.0.0.0 MAIL2SMS_HTTP__HOST=0.0.0.0
USER mail2sms
# The embedded SQLite database is data/gateway.db here: keep it in a volume.
WORKDIR /var/lib/mail2sms
VOLUME ["/var/lib/mail2sms/data"]
EXPOSE 2525 8025
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8025/healthz', timeout=3)"]
ENTRYPOINT ["mail2sms"]
CMD ["serve"]
