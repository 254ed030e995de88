# The poolguard operator image: built on Debian bookworm, run on bookworm-slim with only the shared
# libraries the binary links, as the unprivileged user 65532 (the chart and deploy/ run it under Pod
# Security "restricted" with a read-only root filesystem).
#
# Build and load it into a cluster (any OCI builder reading a Dockerfile works the same way):
#   docker build -t poolguard:0.1.0 .
#   kind load docker-image poolguard:0.1.0        # or push it and set the chart's image.repository
# The tag is the version in CMakeLists.txt and charts/poolguard/Chart.yaml (appVersion).

ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# The build half of scripts/install-deps' list: compilers and the -dev packages the operator links.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config ca-certificates \
      libcpprest-dev libssl-dev libboost-dev nlohmann-json3-dev libyaml-cpp-dev libspdlog-dev libfmt-dev \
      libpq-dev prometheus-cpp-dev libcli11-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake/ cmake/
COPY operator/ operator/
# The release preset without the tests: the image holds only the binary.
RUN cmake --preset release -DPOOLGUARD_BUILD_TESTS=OFF \
 && cmake --build --preset release --target poolguard \
 && strip --strip-unneeded build/bin/poolguard \
 && build/bin/poolguard version

FROM debian:${DEBIAN_RELEASE}-slim
ARG DEBIAN_FRONTEND=noninteractive
# Runtime libraries only (their own dependencies, e.g. libssl3, libfmt9 and Boost's, come with them).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libcpprest2.10 libyaml-cpp0.7 libspdlog1.10 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libpq5 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/poolguard /usr/local/bin/poolguard
# Fails the build when a shared library is missing from the list above (libpq is loaded when a check first needs
# it, so ldd does not list it: it is checked by name).
RUN ! ldd /usr/local/bin/poolguard | grep -q 'not found' && ldconfig -p | grep -q 'libpq.so.5 '
LABEL org.opencontainers.image.title="poolguard" \
      org.opencontainers.image.description="Keeps database connection pools configured, within capacity, and healthy" \
      org.opencontainers.image.version="0.1.0"
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/poolguard"]
CMD ["run", "--leader-elect", "--log-format=json"]
