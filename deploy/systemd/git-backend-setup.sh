#!/usr/bin/env bash
# Turns a stock Debian (12+) host into a githa backend: a plain Git server that
# githa reaches over smart HTTP (git http-backend under nginx + fcgiwrap) and
# SSH (user "git" with git-shell). Nothing githa-specific runs here.
#
#   sudo ./git-backend-setup.sh --service-key /path/to/githa_backend_key.pub \
#        [--allow 10.0.0.0/24] [--root /srv/git] [--http-port 8080]
#
#   --service-key FILE  githa's public key (ssh.backendKey's .pub), added to
#                       git's authorized_keys; keys already there stay (users
#                       who still push to this host directly while they move
#                       to githa, docs/migrate.md)
#   --allow CIDR        addresses nginx serves (githa's); repeatable; default
#                       127.0.0.1 only. Pushes over HTTP need no password here,
#                       so this list (and a firewall) is what protects the host
#   --root DIR          where bare repositories live (default /srv/git)
#   --http-port PORT    nginx port of the http-backend site (default 8080)
#   --no-services       install and configure only; start nothing (images)
#
# Two steps also run on their own (an existing Git host, docs/migrate.md step 1;
# every repository created later):
#   sudo ./git-backend-setup.sh add-key --service-key FILE
#   sudo ./git-backend-setup.sh enable-push (--root DIR | REPO.git...)
# add-key adds githa's key once (run it again: nothing changes). enable-push
# sets http.receivepack in each bare repository's own config (under DIR, or
# those named): git http-backend accepts unauthenticated pushes only there,
# not in every repository of the host (no --system setting).
#
# Idempotent: run it again after changing an option. Repositories are created
# by hand (stock Git servers cannot create them over the wire):
#   sudo -u git git init --bare --initial-branch=main /srv/git/team/app.git
#   sudo ./git-backend-setup.sh enable-push /srv/git/team/app.git
#
# Paths for tests (defaults are the real ones): GIT_BACKEND_USER (git),
# GIT_BACKEND_HOME (/home/git).
set -euo pipefail

ROOT=/srv/git
HTTP_PORT=8080
SERVICE_KEY=""
ALLOW=()
SERVICES=1
GIT_USER="${GIT_BACKEND_USER:-git}"
GIT_HOME="${GIT_BACKEND_HOME:-/home/git}"

log() { printf '[git-backend-setup] %s\n' "$*"; }
die() { printf '[git-backend-setup] ERROR: %s\n' "$*" >&2; exit 1; }

# The first OpenSSH public key line of $1.
read_key() {
  [ -r "$1" ] || die "cannot read $1"
  local line
  line="$(grep -E '^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+' "$1" | head -n1)" || true
  [ -n "$line" ] || die "$1 holds no OpenSSH public key"
  printf '%s\n' "$line"
}

# githa's service key in $GIT_HOME/.ssh/authorized_keys, restricted (no
# forwarding, no terminal: git-shell runs git-upload-pack/receive-pack/
# upload-archive and nothing else). Every other line stays; a line that already
# holds this key (restricted or not) is replaced, so the key is there once and
# a second run writes the same file.
add_service_key() {
  local key_line="$1" blob file tmp
  blob="$(printf '%s\n' "$key_line" | cut -d' ' -f2)"
  install -d -o "$GIT_USER" -g "$GIT_USER" -m 0700 "$GIT_HOME/.ssh"
  file="$GIT_HOME/.ssh/authorized_keys"
  tmp="$(mktemp "$file.XXXXXX")"
  if [ -f "$file" ]; then
    # Fields are matched whole: a key whose blob merely contains this one stays.
    awk -v blob="$blob" '{ for (i = 1; i <= NF; i++) if ($i == blob) next; print }' "$file" >"$tmp"
  fi
  printf 'restrict %s\n' "$key_line" >>"$tmp"
  chown "$GIT_USER:$GIT_USER" "$tmp"
  chmod 0600 "$tmp"
  if [ -f "$file" ] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    log "githa's service key already in $file"
  else
    mv -f "$tmp" "$file"
    log "githa's service key added to $file ($(($(wc -l <"$file") - 1)) other line(s) kept)"
  fi
}

# http.receivepack=true in one bare repository's own config: git http-backend
# refuses pushes without an authenticated REMOTE_USER unless it is set
# (git-http-backend(1)); githa in front decides who may push.
enable_push_repo() {
  local repo="$1" owner
  [ -f "$repo/HEAD" ] && [ -d "$repo/objects" ] && [ -d "$repo/refs" ] || die "$repo is not a Git repository"
  [ "$(git config --file "$repo/config" --bool core.bare 2>/dev/null)" = true ] || die "$repo is not a bare repository"
  # --file: no repository discovery (and no safe.directory refusal as root).
  git config --file "$repo/config" http.receivepack true
  # git rewrote config through a lock file: give it back to the repository's owner.
  owner="$(stat -c '%u:%g' "$repo")"
  chown "$owner" "$repo/config"
  log "pushes over HTTP allowed in $repo"
}

enable_push() {
  [ $# -gt 0 ] || die "enable-push needs --root DIR or repositories"
  local root="" repos=() r
  while [ $# -gt 0 ]; do
    case "$1" in
      --root) root="${2:?}"; shift 2 ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) repos+=("$1"); shift ;;
    esac
  done
  if [ -n "$root" ]; then
    [ -d "$root" ] || die "$root is not a directory"
    # Every bare repository below root (a non-bare repository's .git says core.bare=false).
    while IFS= read -r -d '' r; do
      r="$(dirname "$r")"
      [ -d "$r/objects" ] && [ -d "$r/refs" ] && [ "$(git config --file "$r/config" --bool core.bare 2>/dev/null)" = true ] && repos+=("$r")
    done < <(find "$root" -type f -name HEAD -print0)
  fi
  [ ${#repos[@]} -gt 0 ] || { log "no bare repositories under $root"; return 0; }
  for r in "${repos[@]}"; do enable_push_repo "$r"; done
}

case "${1:-}" in
  add-key)
    shift
    [ "${1:-}" = --service-key ] && [ -n "${2:-}" ] || die "usage: $0 add-key --service-key FILE"
    add_service_key "$(read_key "$2")"
    exit 0 ;;
  enable-push)
    shift
    command -v git >/dev/null 2>&1 || die "git not found"
    enable_push "$@"
    exit 0 ;;
esac

while [ $# -gt 0 ]; do
  case "$1" in
    --service-key) SERVICE_KEY="${2:?}"; shift 2 ;;
    --allow) ALLOW+=("${2:?}"); shift 2 ;;
    --root) ROOT="${2:?}"; shift 2 ;;
    --http-port) HTTP_PORT="${2:?}"; shift 2 ;;
    --no-services) SERVICES=0; shift ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script is for Debian and Ubuntu"
[ -n "$SERVICE_KEY" ] || die "--service-key is required"
case "$ROOT" in /*) ;; *) die "--root must be an absolute path" ;; esac
[[ "$HTTP_PORT" =~ ^[0-9]{1,5}$ ]] || die "--http-port must be a number"
for cidr in "${ALLOW[@]}"; do
  [[ "$cidr" =~ ^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$ ]] || die "--allow $cidr is not an address or CIDR"
done
key_line="$(read_key "$SERVICE_KEY")"

log "installing git, nginx, fcgiwrap, openssh-server"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends git nginx fcgiwrap openssh-server ca-certificates

GIT_SHELL="$(command -v git-shell)"
grep -qxF "$GIT_SHELL" /etc/shells || echo "$GIT_SHELL" >>/etc/shells

if ! id "$GIT_USER" >/dev/null 2>&1; then
  log "creating user $GIT_USER (login shell git-shell)"
  adduser --system --group --home "$GIT_HOME" --shell "$GIT_SHELL" --disabled-password "$GIT_USER"
else
  usermod --shell "$GIT_SHELL" "$GIT_USER"
fi
install -d -o "$GIT_USER" -g "$GIT_USER" -m 0755 "$ROOT"
add_service_key "$key_line"
# Pushes over HTTP: per repository (enable-push), never --system, which would
# open every repository on the host to unauthenticated pushes from --allow.
log "pushes over HTTP: run '$0 enable-push --root $ROOT' (or name repositories) for those githa serves"

# By default git fsyncs packs only: not loose objects (a small push is
# unpacked into loose objects) and not ref updates. After a host crash (power
# loss, kernel panic) a ref can then be back at its previous value, or point at
# a lost object, although receive-pack reported ok, and githa finds a copy that
# went back. core.fsync (git >= 2.36; Debian 12 has 2.39): "committed" names
# objects (loose and packed) and, in git 2.39, refs too; "reference" (loose
# refs, packed-refs) is spelled out so that no git version leaves refs out.
# All are fsynced before git answers; docs/deploy.md#what-a-backend-can-lose.
git_version="$(git --version | sed -n 's/^git version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')"
read -r git_major git_minor <<<"${git_version:-0 0}"
if [ "$git_major" -gt 2 ] || { [ "$git_major" -eq 2 ] && [ "$git_minor" -ge 36 ]; }; then
  log "system git config: core.fsync=committed,reference (objects and refs on disk before git answers)"
  git config --system core.fsync committed,reference
else
  die "git $(git --version) is older than 2.36: no core.fsync, ref updates would not be fsynced (a host crash could turn a copy back)"
fi

log "sshd: AcceptEnv GIT_PROTOCOL for git (protocol v2 over SSH), nothing else"
install -d -m 0755 /etc/ssh/sshd_config.d
cat >/etc/ssh/sshd_config.d/githa-backend.conf <<EOF
# Written by githa's deploy/systemd/git-backend-setup.sh.
Match User git
    AcceptEnv GIT_PROTOCOL
    AuthenticationMethods publickey
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    AllowTcpForwarding no
    AllowAgentForwarding no
    X11Forwarding no
    PermitTTY no
    PermitTunnel no
EOF
sshd -t || die "sshd rejects the configuration (see above)"

log "fcgiwrap runs git http-backend as git, so HTTP and SSH pushes write as the same user"
if [ -d /run/systemd/system ]; then
  install -d -m 0755 /etc/systemd/system/fcgiwrap.service.d
  cat >/etc/systemd/system/fcgiwrap.service.d/githa-backend.conf <<'EOF'
[Service]
User=git
Group=git
EOF
fi

log "nginx site on port $HTTP_PORT: /git/<repo> → git http-backend, root $ROOT"
allow_lines="    allow 127.0.0.1;"
for cidr in "${ALLOW[@]}"; do allow_lines+=$'\n'"    allow ${cidr};"; done
cat >/etc/nginx/sites-available/git-backend <<EOF
# Written by githa's deploy/systemd/git-backend-setup.sh.
server {
    listen ${HTTP_PORT};
    listen [::]:${HTTP_PORT};
    server_name _;
${allow_lines}
    deny all;

    # Packs can be large and slow: no body limit, no buffering either way.
    client_max_body_size 0;
    location ~ ^/git(/.*)\$ {
        include fastcgi_params;
        fastcgi_pass unix:/run/fcgiwrap.socket;
        fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
        fastcgi_param GIT_PROJECT_ROOT ${ROOT};
        fastcgi_param GIT_HTTP_EXPORT_ALL "";
        fastcgi_param PATH_INFO \$1;
        fastcgi_param REMOTE_USER \$remote_user;
        # git sends "Git-Protocol: version=2"; http-backend reads it from the environment.
        fastcgi_param GIT_PROTOCOL \$http_git_protocol;
        fastcgi_request_buffering off;
        fastcgi_buffering off;
        fastcgi_read_timeout 600s;
    }
}
EOF
ln -sf /etc/nginx/sites-available/git-backend /etc/nginx/sites-enabled/git-backend
nginx -t || die "nginx rejects the configuration (see above)"

if [ "$SERVICES" -eq 1 ] && [ -d /run/systemd/system ]; then
  log "restarting ssh, fcgiwrap, nginx"
  systemctl daemon-reload
  systemctl enable --now fcgiwrap.socket
  systemctl restart fcgiwrap.service ssh nginx
fi
log "done: http://<host>:${HTTP_PORT}/git/<repo>.git and ssh://git@<host>${ROOT}/<repo>.git"
