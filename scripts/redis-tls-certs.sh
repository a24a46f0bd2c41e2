#!/usr/bin/env bash
# Makes the certificates for Redis over TLS between hosts (Ops/stunnel/, docs/OPERATIONS.md):
# a private CA, a certificate for the Redis host's stunnel and a client certificate for the
# grid hosts' stunnels. EC P-256 keys, made with openssl.
#
#   scripts/redis-tls-certs.sh DIR [SERVER-NAMES]
#
# SERVER-NAMES: the names the grid hosts connect to, comma-separated (DNS names and/or IP
# addresses; default: this host's `hostname -f`). The first one is the certificate's CN; all go
# into subjectAltName, which is what stunnel's checkHost / checkIP compare.
#
# DIR gets ca.pem, server.pem, client.pem (0644) and ca.key, server.key, client.key (0600).
# ca.key only signs: keep it off the grid's hosts. An existing CA in DIR is never overwritten.
set -euo pipefail

usage="usage: redis-tls-certs.sh DIR [SERVER-NAMES]"
dir=${1:?$usage}
names=${2:-$(hostname -f 2>/dev/null || hostname)}
[[ -n "$names" ]] || { echo "$usage" >&2; exit 2; }
command -v openssl > /dev/null || { echo "openssl is missing (apt-get install openssl)" >&2; exit 1; }
if [[ -e "$dir/ca.key" ]]; then
  echo "$dir/ca.key exists: not replacing a CA (remove it or choose another DIR)" >&2
  exit 1
fi

# Keys are created 0600 from the start; certificates are made readable below.
umask 077
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

san=()
IFS=',' read -r -a list <<< "$names"
for name in "${list[@]}"; do
  [[ -n "$name" ]] || continue
  # An IPv4 or IPv6 literal is an IP entry; checkHost would not match it as a DNS name.
  if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then san+=("IP:$name"); else san+=("DNS:$name"); fi
done
[[ ${#san[@]} -gt 0 ]] || { echo "$usage" >&2; exit 2; }
server_cn=${list[0]}
subject_alt_name=$(IFS=','; echo "${san[*]}")

cat > "$work/ext.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]

[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $subject_alt_name
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2> "$work/log" || { cat "$work/log" >&2; exit 1; }; }
# Random serials: certificates from two runs never share one.
serial() { echo "0x$(openssl rand -hex 16)"; }

key "$dir/ca.key"
openssl req -new -x509 -key "$dir/ca.key" -subj "/O=RadGrid/CN=RadGrid Redis CA" -days 3650 -sha256 \
  -set_serial "$(serial)" -config "$work/ext.cnf" -extensions ca -out "$dir/ca.pem"

issue() {
  local name=$1 subject=$2 section=$3
  key "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "$subject" -config "$work/ext.cnf" -out "$work/$name.csr"
  openssl x509 -req -in "$work/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "$(serial)" \
    -days 825 -sha256 -extfile "$work/ext.cnf" -extensions "$section" -out "$dir/$name.pem" 2> "$work/log" \
    || { cat "$work/log" >&2; exit 1; }
}
issue server "/O=RadGrid/CN=$server_cn" server
issue client "/O=RadGrid/CN=radgrid-redis-client" client

chmod 0600 "$dir"/ca.key "$dir"/server.key "$dir"/client.key
chmod 0644 "$dir"/ca.pem "$dir"/server.pem "$dir"/client.pem
openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" "$dir/client.pem" > /dev/null

cat <<EOF
$dir: CA, server certificate for $subject_alt_name, client certificate (valid 825 days)
  Redis host:  ca.pem server.pem server.key  -> Ops/stunnel/redis-server.conf
  grid hosts:  ca.pem client.pem client.key  -> Ops/stunnel/redis-client.conf
  ca.key:      keep offline (signs further certificates)
EOF
