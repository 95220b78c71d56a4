# Images of the Docker runtime for hosts with Docker (without a registry, `orchestrate image
# import recengine|nginx` builds the same from this machine's binaries):
#   docker build --target recengine -t localhost/recengine:latest .
#   docker build --target lb -t localhost/orchestrate-nginx:latest .
# The recengine image also carries orchestrate, for stages that run in containers (image:).

# Build: the Swift toolchain image, the C libraries the targets link.
FROM swift:6.1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcurl4-openssl-dev librdkafka-dev zlib1g-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a source change does not fetch them again.
COPY Package.swift ./
RUN swift package resolve
COPY Sources Sources
COPY Tests Tests
RUN swift build -c release --static-swift-stdlib --product recengine \
    && swift build -c release --static-swift-stdlib --product orchestrate \
    && mkdir /out && cp "$(swift build -c release --show-bin-path)"/recengine "$(swift build -c release --show-bin-path)"/orchestrate /out/ \
    && cp -R "$(swift build -c release --show-bin-path)"/orchestrate_Traffic.resources "$(swift build -c release --show-bin-path)"/orchestrate_Provenance.resources /out/

# Run: a slim base with the shared libraries only.
FROM debian:bookworm-slim AS recengine
RUN apt-get update \
    && apt-get install -y --no-install-recommends libcurl4 librdkafka1 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /model
COPY --from=build /out/recengine /out/orchestrate /usr/local/bin/
# orchestrate's resources (nginx's template, the Lua balancer, the report's style) beside it.
COPY --from=build /out/orchestrate_Traffic.resources /usr/local/bin/orchestrate_Traffic.resources
COPY --from=build /out/orchestrate_Provenance.resources /usr/local/bin/orchestrate_Provenance.resources
EXPOSE 8080
ENTRYPOINT []
CMD ["recengine", "serve", "--model", "/model", "--host", "0.0.0.0", "--port", "8080"]

# The load balancer: nginx with the Lua module (the balancer that takes traffic splits without a
# reload), configured by orchestrate through a bind-mounted folder.
FROM debian:bookworm-slim AS lb
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx libnginx-mod-http-lua \
    && rm -rf /var/lib/apt/lists/*
CMD ["nginx", "-g", "daemon off;"]
