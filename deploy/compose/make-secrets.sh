#!/bin/sh
# Make the compose stack's secrets in ./secrets: random passwords, MinIO credentials for
# openpacs, a private CA, a server certificate for HOST (default: localhost), and the
# certificates PostgreSQL and MinIO present to openpacs (TLS inside the stack too).
#   ./make-secrets.sh [HOST]
# Existing secrets are kept, so running it again only adds what is missing; the server
# certificate is made again for the HOST given.
set -eu
cd "$(dirname "$0")"
host="${1:-localhost}"

umask 077
mkdir -p secrets
chmod 700 secrets
random() { head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | cut -c1-32; }
keep_or_make() { [ -s "secrets/$1" ] || random > "secrets/$1"; }

keep_or_make db_password
keep_or_make admin_password
keep_or_make minio_root_password
[ -s secrets/minio_root_user ] || echo "minio-root" > secrets/minio_root_user
[ -s secrets/s3_credentials ] || printf '[default]\naws_access_key_id = openpacs\naws_secret_access_key = %s\n' "$(random)" > secrets/s3_credentials

# `openpacs certs` from this machine when installed, otherwise from the stack's image (built
# on first use), writing as this user.
if command -v openpacs >/dev/null 2>&1; then
    certs() { openpacs certs "$@"; }
    out=secrets
else
    certs() { docker compose --profile tools run --rm --user "$(id -u):$(id -g)" certs "$@"; }
    out=/out
fi
[ -s secrets/ca.pem ] || certs ca "$out"
certs server "$out" --force --host "$host" --host localhost --host 127.0.0.1 --host openpacs
# PostgreSQL and MinIO, by the names openpacs reaches them at (MinIO also as localhost, for
# its own health check).
for service in postgres minio; do
    mkdir -p "secrets/$service"
    [ -s "secrets/$service/server.pem" ] ||
        certs server "$out/$service" --ca-dir "$out" --host "$service" --host localhost
done

# The containers run as other users (openpacs as uid 10001): the files must be readable by
# them; the 0700 folder keeps them private on this host. The CA key is never mounted.
chmod 644 secrets/* secrets/postgres/* secrets/minio/* 2>/dev/null || true
chmod 755 secrets/postgres secrets/minio
chmod 600 secrets/ca.key
echo "secrets ready in $(pwd)/secrets; trust secrets/ca.pem in browsers and DICOM peers"
