# Dockerfile — one image with fenbo's three daemons and fenboctl, for
# docker-compose.yml (the scale-out deployment shape). Debian 12, as
# scripts/install-deps; not used by the tests or the demo.
#
#   docker build -t fenbo .
#   docker run --rm fenbo fenboctl --help

FROM debian:12 AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libzmq3-dev libpq-dev libjansson-dev libuv1-dev check libmicrohttpd-dev \
        libopencc-dev libgmime-3.0-dev libexif-dev libinih-dev libssl-dev zlib1g-dev \
        libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build reads: the image does not depend on local build trees.
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY lib/ lib/
COPY intake/ intake/
COPY dispatcher/ dispatcher/
COPY workers/ workers/
COPY tools/ tools/
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DFENBO_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" \
        --target fenbo-intake fenbo-dispatcher fenbo-worker fenboctl

FROM debian:12-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libzmq5 libpq5 libjansson4 libuv1 libmicrohttpd12 libopencc1.1 libopencc-data \
        libgmime-3.0-0 libexif12 libinih1 libssl3 zlib1g tzdata ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/intake/fenbo-intake /build/dispatcher/fenbo-dispatcher \
     /build/workers/fenbo-worker /build/tools/fenboctl /usr/local/bin/
# `fenboctl db migrate` reads the migrations from FENBO_SCHEMA_DIR; the demo
# city is there for `fenboctl data import /usr/share/fenbo/demo`.
COPY schema/ /usr/share/fenbo/schema/
COPY config/demo/ /usr/share/fenbo/demo/
COPY config/fenbo.ini.example /usr/share/fenbo/fenbo.ini.example
ENV FENBO_SCHEMA_DIR=/usr/share/fenbo/schema
# The daemons never need root. data_dir (the intakes' spool) is a volume
# mounted at /var/lib/fenbo/data.
RUN useradd --system --user-group --home-dir /var/lib/fenbo --create-home fenbo \
    && mkdir -p /var/lib/fenbo/data && chown fenbo:fenbo /var/lib/fenbo/data
USER fenbo
WORKDIR /var/lib/fenbo
CMD ["fenboctl", "--help"]
