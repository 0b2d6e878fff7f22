#!/usr/bin/env bash
# Installs githa's systemd unit (githa.service next to this script), its
# system user and /etc/githa with owners and modes the unit can read
# (why: the comment at the top of githa.service). githa itself goes to
# /opt/githa first (`npm ci && npm run build`, docs/deploy.md).
#
#   sudo ./install-githa.sh [--from DIR] [--no-services]
#
#   --from DIR      copy the files DIR holds into /etc/githa:
#                     githa.yaml, authorized_keys, backend_known_hosts
#                       → root:githa 0640 (githa reads them)
#                     ssh_host_ed25519_key, backend_key
#                       → root:root 0600 (systemd passes them as credentials)
#   --no-services   install only; no daemon-reload, nothing enabled
#
# Files already in /etc/githa get the same owners and modes: run it again
# after editing one (or to repair modes). Idempotent.
#
# Paths for tests (defaults are the real ones): GITHA_ETC (/etc/githa),
# GITHA_USER (githa), GITHA_UNIT_DIR (/etc/systemd/system). With other
# values the installed unit names them instead of the defaults.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ETC="${GITHA_ETC:-/etc/githa}"
USER_NAME="${GITHA_USER:-githa}"
UNIT_DIR="${GITHA_UNIT_DIR:-/etc/systemd/system}"
FROM=""
SERVICES=1
PUBLIC=(githa.yaml authorized_keys backend_known_hosts)
SECRET=(ssh_host_ed25519_key backend_key)

log() { printf '[install-githa] %s\n' "$*"; }
die() { printf '[install-githa] ERROR: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --from) FROM="${2:?}"; shift 2 ;;
    --no-services) SERVICES=0; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "run as root"
[[ "$USER_NAME" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "GITHA_USER $USER_NAME is not a user name"
case "$ETC" in /*) ;; *) die "GITHA_ETC must be an absolute path" ;; esac
[ -z "$FROM" ] || [ -d "$FROM" ] || die "--from $FROM is not a directory"

if ! getent passwd "$USER_NAME" >/dev/null; then
  log "creating system user $USER_NAME (no home, no login)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$USER_NAME"
fi

install -d -o root -g "$USER_NAME" -m 0750 "$ETC"
for f in "${PUBLIC[@]}"; do
  if [ -n "$FROM" ] && [ -f "$FROM/$f" ]; then install -o root -g "$USER_NAME" -m 0640 "$FROM/$f" "$ETC/$f"; log "$ETC/$f (root:$USER_NAME 0640)"; fi
  if [ -f "$ETC/$f" ]; then chown root:"$USER_NAME" "$ETC/$f"; chmod 0640 "$ETC/$f"; fi
done
for f in "${SECRET[@]}"; do
  if [ -n "$FROM" ] && [ -f "$FROM/$f" ]; then install -o root -g root -m 0600 "$FROM/$f" "$ETC/$f"; log "$ETC/$f (root:root 0600, a credential)"; fi
  if [ -f "$ETC/$f" ]; then chown root:root "$ETC/$f"; chmod 0600 "$ETC/$f"; fi
done
[ -f "$ETC/githa.yaml" ] || log "no $ETC/githa.yaml yet: run again with --from, or install it root:$USER_NAME 0640"

install -d -m 0755 "$UNIT_DIR"
# The unit as shipped names /etc/githa and githa; other values replace those names.
sed -e "s|/etc/githa/|$ETC/|g" -e "s|^User=githa$|User=$USER_NAME|" -e "s|^Group=githa$|Group=$USER_NAME|" \
  "$HERE/githa.service" >"$UNIT_DIR/githa.service.tmp"
chmod 0644 "$UNIT_DIR/githa.service.tmp"
mv -f "$UNIT_DIR/githa.service.tmp" "$UNIT_DIR/githa.service"
log "$UNIT_DIR/githa.service"

if [ "$SERVICES" -eq 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  log "start it: systemctl enable --now githa"
fi
