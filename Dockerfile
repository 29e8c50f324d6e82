# octet daemon image.
#
#   docker build -t octet .
#   docker run -d --name octet -v octet-data:/data -p 4710:4710 -p 4711:4711 -p 127.0.0.1:4780:4780 octet
#   docker exec octet cat /data/api.token      # the HTTP API bearer token
#
# Any CLI command runs the same way: `docker run --rm -v octet-data:/data octet id`.
# Configuration comes from OCTET_* environment variables (see below); flags
# given after the image name override them.

# ---- build: all dependencies, TypeScript compiled to dist/ -------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bin ./bin
# the web page, bundled into dist/web by esbuild; the examples (npm run build builds them
# too) are not in the image
COPY web ./web
COPY scripts/build-web.js ./scripts/
RUN npm run build:daemon

# ---- runtime: production dependencies and dist/ only ------------------------
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY LICENSE ./

# The data directory holds identity.key and api.token (mode 0600): owned by
# the unprivileged `node` user (uid 1000) that ships with the base image.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node

ENV OCTET_DATA_DIR=/data \
    OCTET_LISTEN=/ip4/0.0.0.0/tcp/4710,/ip4/0.0.0.0/tcp/4711/ws \
    OCTET_API=0.0.0.0:4780 \
    OCTET_LOG_LEVEL=info

# 4710 libp2p TCP, 4711 libp2p WebSockets, 4780 HTTP API (publish it on 127.0.0.1 only),
# 3478/udp STUN for peers behind NATs (answered while this node is public)
EXPOSE 4710 4711 4780 3478/udp

# /v1/health needs no token
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:4780/v1/health', { signal: AbortSignal.timeout(4000) }).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# 4 MB young-generation semi-spaces: ~20 MB less resident memory per daemon at no measured
# CPU cost (npm run bench -- testnet); the same flag the testnet and `npm start` use
ENTRYPOINT ["node", "--max-semi-space-size=4", "bin/octet.js"]
CMD ["daemon"]
