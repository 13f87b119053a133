#!/usr/bin/env bash
# Install (from Debian's packages) and start PostgreSQL on localhost with a frugal/frugal superuser
# and a frugal_test database. Idempotent: safe to run on a machine where it already runs.
set -euo pipefail

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
fi
version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "${version}/main"; then
  pg_createcluster "${version}" main >/dev/null
fi
if ! pg_lsclusters -h | awk -v v="${version}" '$1==v && $2=="main" {print $4}' | grep -qx online; then
  pg_ctlcluster "${version}" main start
fi
for _ in $(seq 1 30); do
  runuser -u postgres -- pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 1
done
runuser -u postgres -- psql -q -p 5432 -tc "SELECT 1 FROM pg_roles WHERE rolname='frugal'" | grep -q 1 \
  || runuser -u postgres -- psql -q -p 5432 -c "CREATE ROLE frugal LOGIN SUPERUSER PASSWORD 'frugal'"
runuser -u postgres -- psql -q -p 5432 -tc "SELECT 1 FROM pg_database WHERE datname='frugal_test'" | grep -q 1 \
  || runuser -u postgres -- createdb -p 5432 -O frugal frugal_test
echo "postgres ${version} ready on 127.0.0.1:5432"
