# Builds both binaries; compose.yaml runs one image as the API and as workers.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      clang libclang-dev pkg-config libavcodec-dev libavformat-dev libavfilter-dev \
      libavdevice-dev libswscale-dev libswresample-dev libavutil-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libavcodec59 libavformat59 libavfilter8 libavdevice59 libswscale6 \
      libswresample4 libavutil57 curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/api /src/target/release/worker /usr/local/bin/
ENV API_BIND=0.0.0.0:8000
EXPOSE 8000
CMD ["api"]
