// The config `pprof-scraper run` uses when it is given none: the daemon
// profiles itself through its own status listener, so a fresh install shows
// the whole pipeline working with nothing else around.
export const EMBEDDED_DEFAULT_YAML = `\
scrape:
  interval: 10s
  timeout: 10s
profiles:
  cpu: {path: /debug/pprof/profile, seconds: 5}
  heap: {path: /debug/pprof/heap}
discovery:
  - static:
      service: pprof-scraper
      targets: [127.0.0.1:10101]
repositories:
  - directory: {path: ./profiles, retention: {max_age: 7d, max_size: 1GiB}}
server:
  listen: 127.0.0.1:10101
`;
