# The hub as a container: runs `lotpulse serve` against the MongoDB replica set in LOTPULSE_MONGODB_URI.
#   docker build -t lotpulse .
#   docker run -p 8000:8000 -e LOTPULSE_MONGODB_URI="mongodb://mongo:27017/?replicaSet=rs0" \
#     -e LOTPULSE_PUBLIC_URL=https://hub.example.com -v lotpulse-keys:/data lotpulse
# /data holds the hub's signing-key file; share it (or LOTPULSE_SIGNING_KEY_FILE) between hub replicas.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY schema ./schema
COPY tenants ./tenants
COPY webhooks ./webhooks
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LOTPULSE_HOST=0.0.0.0 \
    LOTPULSE_PORT=8000 \
    LOTPULSE_DATA_DIR=/data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --user-group --home-dir /data --create-home --shell /usr/sbin/nologin lotpulse
USER lotpulse
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)"]
# The image holds no embedded database (the `embedded` extra is not installed): `serve` without LOTPULSE_MONGODB_URI
# exits with a message naming the variable to set.
ENTRYPOINT ["lotpulse"]
CMD ["serve", "--host", "0.0.0.0"]
