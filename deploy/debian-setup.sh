#!/usr/bin/env bash
# Installs what githa's integration tests and `githa demo` need on Debian/Ubuntu:
# git (with git-http-backend and git daemon), redis-server (also run as Redis
# Sentinel by the tests), lighttpd and Apache (apache2: the tests run backends
# under both, src/demo/apache.ts), sshd, the ssh client, haproxy and promtool
# (to validate deploy/). The test harness starts its own instances on ephemeral ports,
# so the system services that apt may start are stopped and disabled.
#
# Idempotent. Runs as root, or through sudo when available.
set -euo pipefail

log() { printf '[debian-setup] %s\n' "$*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
    log "not root: using sudo"
  else
    log "ERROR: must run as root (or with sudo installed)" >&2
    exit 1
  fi
fi

if ! command -v apt-get >/dev/null 2>&1; then
  log "ERROR: apt-get not found; this script is for Debian and Ubuntu" >&2
  exit 1
fi

PACKAGES=(
  git
  redis-server
  redis-tools
  openssh-server
  openssh-client
  lighttpd
  # Backends under Apache (mod_cgi, mod_auth_basic) in test/integration/apache.test.ts.
  apache2
  ca-certificates
  procps
  iproute2
  chromium
  # deploy/haproxy/*.cfg are validated with `haproxy -c` (test/deploy/).
  haproxy
  # promtool (in Debian's prometheus package) checks and unit-tests
  # deploy/prometheus/githa.rules.yml (test/deploy/prometheus.test.ts); the
  # Prometheus server the package may start is stopped below.
  prometheus
  # systemd-analyze verifies deploy/systemd/githa.service (test/deploy/systemd.test.ts).
  systemd
  # Compilers for the native add-ons npm builds (ssh2's crypto binding,
  # cpu-features, node-pty), against each Node.js runtime's headers.
  python3
  make
  g++
  # deploy/compose/docker-compose.yml is validated with `docker-compose config`
  # (test/deploy/deploy.test.ts) where no `docker compose` plugin is installed.
  docker-compose
  # Third-party Git clients (test/integration/third-party-clients.test.ts):
  # libgit2 through pygit2 and Dulwich for /usr/bin/python3, JGit with a JRE.
  python3-pygit2
  python3-dulwich
  jgit-cli
  default-jre-headless
)

log "apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q

log "installing: ${PACKAGES[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"

log "stopping system services that would hold ports (failures are fine)"
for service in redis-server lighttpd apache2 apache-htcacheclean ssh haproxy prometheus; do
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
  elif command -v service >/dev/null 2>&1; then
    "${SUDO[@]}" service "$service" stop >/dev/null 2>&1 || true
  fi
done

# sshd refuses to start as root without its privilege separation directory,
# which systemd normally creates at boot.
log "creating /run/sshd"
"${SUDO[@]}" mkdir -p /run/sshd
"${SUDO[@]}" chmod 0755 /run/sshd

log "checking tools"
missing=0
for tool in git redis-server redis-cli lighttpd /usr/sbin/sshd ssh ssh-keygen /usr/lib/git-core/git-http-backend haproxy promtool /usr/sbin/apache2; do
  if command -v "$tool" >/dev/null 2>&1 || [ -x "$tool" ]; then
    log "  ok: $tool"
  else
    log "  MISSING: $tool" >&2
    missing=1
  fi
done
if [ -x /usr/lib/lighttpd/mod_cgi.so ] || [ -f /usr/lib/lighttpd/mod_cgi.so ]; then
  log "  ok: lighttpd mod_cgi"
else
  log "  MISSING: /usr/lib/lighttpd/mod_cgi.so" >&2
  missing=1
fi
for module in mod_cgi mod_auth_basic mod_authn_file mod_setenvif mod_headers mod_mpm_prefork; do
  if [ -f "/usr/lib/apache2/modules/$module.so" ]; then
    log "  ok: apache2 $module"
  else
    log "  MISSING: /usr/lib/apache2/modules/$module.so" >&2
    missing=1
  fi
done
if [ "$missing" -ne 0 ]; then
  log "ERROR: some tools are missing" >&2
  exit 1
fi

log "versions: $(git --version); $(redis-server --version | cut -d' ' -f1-3); $(lighttpd -v | head -n1 | cut -d' ' -f1); $(/usr/sbin/apache2 -v | head -n1 | cut -d' ' -f3); $(promtool --version 2>&1 | head -n1 | cut -d' ' -f1-3); $(ssh -V 2>&1)"
log "done"
