# docobo-server and the docobo CLI in a small runtime image.
# Build: docker build -t docobo .    Run: see docker-compose.yml (server + PostgreSQL).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p docobo-server -p docobo-cli

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /data docobo && mkdir -p /data \
    && chown docobo /data
COPY --from=build /src/target/release/docobo-server /src/target/release/docobo /usr/local/bin/
USER docobo
WORKDIR /data
ENV DOCOBO_LISTEN=0.0.0.0:3000 DOCOBO_LOG_FORMAT=json
EXPOSE 3000
HEALTHCHECK CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/3000 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ok <&3"]
ENTRYPOINT ["docobo-server"]
