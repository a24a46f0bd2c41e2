#!/usr/bin/env bash
# Renders radgrid-users.acl from the template: one ACL user per role, each confined to its
# own key families and the commands its work needs (no FLUSHALL, CONFIG, DEBUG, KEYS; only the
# auditor deletes audit entries). The template is `radgridctl acl template` (the rules live in
# GridContract/GridRoles.swift); Redis ACL files take no comments, hence the template.
#
#   Ops/redis/render-acl.sh OUTPUT.acl [SECRETS.env]
#
# Passwords come from RADGRID_<ROLE>_PASSWORD when set, else are generated; only their
# SHA-256 goes into the ACL file. The passwords are written to SECRETS.env (mode 600) as
# REDIS_URL lines per role, for the daemons' environment files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: render-acl.sh OUTPUT.acl [SECRETS.env]}
secrets=${2:-}
host=${RADGRID_REDIS_HOST:-127.0.0.1:6379}
content=$(cat "$here/radgrid-users.acl.template")
[[ -n "$secrets" ]] && { umask 077; : > "$secrets"; }
for role in GATEWAY DIMSE COORDINATOR WORKER ROUTER PORTAL ADMIN MONITOR AUDITOR FEED; do
  variable="RADGRID_${role}_PASSWORD"
  password=${!variable:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
  digest=$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)
  content=${content//@$role@/$digest}
  user="radgrid-$(echo "$role" | tr 'A-Z' 'a-z')"
  [[ -n "$secrets" ]] && echo "RADGRID_${role}_REDIS_URL=redis://$user:$password@$host" >> "$secrets"
done
printf '%s\n' "$content" > "$out"
