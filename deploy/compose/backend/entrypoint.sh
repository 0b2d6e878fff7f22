#!/usr/bin/env bash
# Starts one compose backend: sshd, fcgiwrap (as git) and nginx, after
# installing this backend's host key and githa's service key from the shared
# secrets volume, and creating the repositories named in $REPOSITORIES
# (stock Git servers cannot create repositories over the wire).
set -euo pipefail

: "${BACKEND_ID:?set BACKEND_ID}"
SECRETS=/secrets
for _ in $(seq 1 60); do [ -f "$SECRETS/ready" ] && break; sleep 1; done
[ -f "$SECRETS/ready" ] || { echo "no keys in $SECRETS (is the keys service done?)" >&2; exit 1; }

install -m 0600 "$SECRETS/${BACKEND_ID}_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
install -m 0644 "$SECRETS/${BACKEND_ID}_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
# The image's authorized_keys holds only the build's placeholder key: replaced, not added to.
printf 'restrict %s\n' "$(cat "$SECRETS/backend_key.pub")" >/home/git/.ssh/authorized_keys
chown git:git /home/git/.ssh/authorized_keys
chmod 0600 /home/git/.ssh/authorized_keys
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\n' >/etc/ssh/sshd_config.d/00-hostkey.conf

for repo in ${REPOSITORIES:-}; do
  case "$repo" in *..*|/*) echo "skipping unsafe repository name $repo" >&2; continue ;; esac
  path="/srv/git/${repo%.git}.git"
  [ -d "$path" ] || runuser -u git -- git init --quiet --bare --initial-branch=main "$path"
  # Pushes over HTTP per repository, not host-wide (git-backend-setup.sh enable-push).
  /usr/local/sbin/git-backend-setup enable-push "$path"
done

/usr/sbin/sshd -e
install -d -o git -g git -m 0755 /run/fcgiwrap
runuser -u git -- /usr/sbin/fcgiwrap -s unix:/run/fcgiwrap/fcgiwrap.socket &
for _ in $(seq 1 50); do [ -S /run/fcgiwrap/fcgiwrap.socket ] && break; sleep 0.1; done
chmod 0666 /run/fcgiwrap/fcgiwrap.socket
ln -sf /run/fcgiwrap/fcgiwrap.socket /run/fcgiwrap.socket
exec nginx -g 'daemon off;'
