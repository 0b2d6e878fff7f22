#!/bin/sh
# One-shot "keys" service of the compose cluster: creates, once, every key the
# cluster shares in the secrets volume — githa's SSH host key (the same for
# both githas), githa's service key for the backends, each backend's host key
# and the known_hosts githa verifies them with. Runs again as a no-op.
set -eu
cd /secrets
if [ ! -f ready ]; then
  ssh-keygen -q -t ed25519 -N '' -C githa-host -f githa_host_ed25519_key
  ssh-keygen -q -t ed25519 -N '' -C githa-service -f backend_key
  : >backend_known_hosts
  for b in b1 b2 b3; do
    ssh-keygen -q -t ed25519 -N '' -C "$b" -f "${b}_host_ed25519_key"
    printf '%s %s\n' "$b" "$(cut -d' ' -f1,2 "${b}_host_ed25519_key.pub")" >>backend_known_hosts
  done
  # githa runs as uid 1000 ("node" in its image).
  chown 1000:1000 githa_host_ed25519_key backend_key backend_known_hosts
  chmod 0600 githa_host_ed25519_key backend_key
  touch ready
fi
echo "keys ready"
