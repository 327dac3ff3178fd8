# syntax=docker/dockerfile:1
# Considerate Callback for docker-compose.yml: built in one stage, run from a slim one with production
# dependencies only. The SQLite store lives in the /data volume.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary fits.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
# The web page and the demo's browser phones (JsSIP bundled by esbuild into dist/web).
COPY web/ web/
COPY scripts/build-web.mjs scripts/
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
COPY config/ config/
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["run", "--config", "config/demo.json"]
