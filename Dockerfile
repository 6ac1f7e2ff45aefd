# pprof-scraper container image.
#
#   docker build -t pprof-scraper .
#   docker run -d --name pprof-scraper -p 127.0.0.1:10101:10101 \
#     -v "$PWD/config.yaml:/etc/pprof-scraper/config.yaml:ro" \
#     -v pprof-scraper-state:/var/lib/pprof-scraper pprof-scraper
#
# Without a mounted config the image runs docker/config.yaml: it profiles
# itself into the state volume. `docker kill -s HUP pprof-scraper` reloads.
# The status listener binds every interface of the container (so -p reaches
# it): publish it on 127.0.0.1 as above, or set server.basic_auth and
# server.tls before publishing it anywhere else (docs/security.md).

ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: compile the TypeScript, then keep only production dependencies
FROM ${NODE_IMAGE} AS build
# the commit --version reports: the build context has no .git
# (docker build --build-arg PPROF_SCRAPER_COMMIT=$(git rev-parse HEAD) .)
ARG PPROF_SCRAPER_COMMIT=
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY scripts/build-info.sh ./scripts/build-info.sh
COPY src ./src
# No dependency needs its install script: package.json's allowScripts denies
# all four, and the image's npm may be older than the one that reads it, so
# --ignore-scripts says the same to any npm (docs/install.md). It skips
# `prepare` too: the build runs by name.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && PPROF_SCRAPER_COMMIT="$PPROF_SCRAPER_COMMIT" npm run build \
 && test -x dist/cli/index.js \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: the built CLI, its production node_modules, nothing else
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /opt/pprof-scraper
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY docker/config.yaml /etc/pprof-scraper/config.yaml
COPY config.example.yaml /usr/share/doc/pprof-scraper/config.example.yaml
RUN ln -s /opt/pprof-scraper/dist/cli/index.js /usr/local/bin/pprof-scraper \
 && mkdir -p /var/lib/pprof-scraper \
 && chown node:node /var/lib/pprof-scraper

# the official image's unprivileged user (uid 1000)
USER node
# relative paths in the config (./profiles, state_dir) land in the volume
WORKDIR /var/lib/pprof-scraper
VOLUME ["/var/lib/pprof-scraper"]
EXPOSE 10101

# slim images have no curl: ask /healthz with node itself. /healthz needs no
# credentials under server.basic_auth; with server.tls, set an https:// URL
# (the probe stays on loopback, so it does not check the certificate)
ENV PPROF_SCRAPER_HEALTHCHECK_URL=http://127.0.0.1:10101/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const u = process.env.PPROF_SCRAPER_HEALTHCHECK_URL; require(u.startsWith('https:') ? 'https' : 'http').get(u, { rejectUnauthorized: false }, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1)).setTimeout(4000, () => process.exit(1))"]

# the daemon finishes in-flight scrapes and hands profiles over on SIGTERM;
# give it `docker stop -t 30`
STOPSIGNAL SIGTERM
# --liftoff-only keeps the HTTP client's WebAssembly parser on V8's baseline
# compiler: a 10 MiB lower peak on Node 22 (docs/performance.md). NODE_OPTIONS does
# not take this flag, so it goes on node's command line. --heap-growing-percent=50:
# the old generation is collected at 1.5 times what was live, not up to 4 times
# (at thousands of targets, 270 MiB rather than 430; docs/performance.md).
ENTRYPOINT ["node", "--liftoff-only", "--heap-growing-percent=50", "/opt/pprof-scraper/dist/cli/index.js"]
CMD ["run", "--config", "/etc/pprof-scraper/config.yaml"]
