# fanswarm in a container: the server and the web bundle, built inside.
#   docker build -t fanswarm .
#   docker run -p 8080:8080 -v ~/Music:/music:ro \
#       -e FANSWARM_PUBLIC_URL=http://<this machine>:8080 fanswarm
# With a domain: publish 80 and 443 and set FANSWARM_LISTEN=0.0.0.0:443,
# FANSWARM_REDIRECT_LISTEN=0.0.0.0:80, FANSWARM_ACME=<domain>; keep
# /var/cache/fanswarm on a volume so certificates survive a new container.
# `docker stop` sends SIGTERM: responses finish, the process exits 0.

FROM rust:1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm brotli \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/install-deps \
    && scripts/build-web \
    && cargo build --release --locked -p signal-server --no-default-features

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/cache/fanswarm fanswarm \
    && mkdir -p /var/cache/fanswarm /music \
    && chown fanswarm /var/cache/fanswarm
COPY --from=build /src/target/release/signal-server /usr/local/bin/signal-server
COPY --from=build /src/web /usr/local/share/fanswarm-web
USER fanswarm
ENV FANSWARM_WEB_DIR=/usr/local/share/fanswarm-web \
    FANSWARM_CACHE_DIR=/var/cache/fanswarm \
    FANSWARM_LIBRARY=/music \
    FANSWARM_LISTEN=0.0.0.0:8080
VOLUME ["/var/cache/fanswarm"]
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/signal-server"]
CMD ["serve"]
