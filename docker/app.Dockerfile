# Considerate Callback for docker-compose.yml. Two stages: the build stage has the compilers
# (better-sqlite3 compiles from source when no prebuilt binary fits) and the dev dependencies; the final
# image has Node, the built app and its production dependencies only: no compilers, no npm, no yarn.
# It runs as the unprivileged `node` user (uid 1000); the SQLite store lives in the /data volume.
#
# The base image is pinned to an exact tag (Node 20.20.2 on Debian 12): a rebuild gets the same Node.
# `npm run test:compose` builds this file unchanged against a local stand-in of that tag (README, "Tests").

FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# npm has been seen to exit 0 after "Exit handler never called!" with a half-installed tree: check it.
RUN npm ci --no-audit --no-fund && test -x node_modules/.bin/tsc
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
# The web page and the demo's browser phones (JsSIP bundled by esbuild into dist/web).
COPY web/ web/
COPY scripts/build-web.mjs scripts/clean.mjs scripts/
RUN npm run build && npm prune --omit=dev && npm cache clean --force

FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production
# Nothing installs packages at run time: npm, npx, corepack and yarn leave the final image.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack /opt/yarn* \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg \
      /usr/local/include/node /root/.npm
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
