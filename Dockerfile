# Builds both binaries; compose.yaml runs one image as the API and as workers.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      clang libclang-dev pkg-config libavcodec-dev libavformat-dev libavfilter-dev \
      libavdevice-dev libswscale-dev libswresample-dev libavutil-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bins

# Swagger UI for /docs, served by the API itself (no CDN).
FROM node:20-bookworm-slim AS docs
WORKDIR /docs
RUN npm pack swagger-ui-dist@5.35.0 && tar -xzf swagger-ui-dist-*.tgz \
    && mkdir out && cp package/swagger-ui.css package/swagger-ui-bundle.js out/

# The music catalogue: MIT-licensed tracks from PyPI, unpacked (never fetched at run time).
FROM python:3.11-slim-bookworm AS music
RUN pip install --no-cache-dir --no-deps --target /music immich-memories-music==0.1.0

# The clips the styles' samples are rendered from, generated (never shipped as files).
FROM debian:bookworm-slim AS samples
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg && rm -rf /var/lib/apt/lists/*
COPY scripts/sample-clips /usr/local/bin/
RUN mkdir /samples && sample-clips /samples

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      ca-certificates libavcodec59 libavformat59 libavfilter8 libavdevice59 libswscale6 \
      libswresample4 libavutil57 curl fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/api /src/target/release/worker /usr/local/bin/
COPY --from=docs /docs/out /usr/share/montage/swagger-ui
COPY --from=music /music /usr/share/montage/music
COPY --from=samples /samples /usr/share/montage/sample-clips
# Workers render each style's sample from STYLE_SAMPLE_CLIPS once per deployment.
ENV API_BIND=0.0.0.0:8000 DOCS_ASSETS_DIR=/usr/share/montage/swagger-ui \
    MUSIC_DIR=/usr/share/montage/music STYLE_SAMPLE_CLIPS=/usr/share/montage/sample-clips
EXPOSE 8000
CMD ["api"]
