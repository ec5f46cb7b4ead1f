#!/bin/bash
# The MongoDB pod's init container (mongo image): brings the X.509 users of the data directory
# in line with the release's MongoDB clients before mongod starts with TLS and --auth. It starts
# mongod on the data directory without access control, bound to 127.0.0.1 on another port (so
# nothing outside the pod can reach it, and no client can mistake it for the real one), runs
# mongodb-x509-users.js with mongosh, and shuts mongod down. It holds no credential: X.509 users
# have none, and a mongod without --auth needs none (the mongo image's own first-start
# initialisation works the same way).
set -euo pipefail
dbpath="${KIOSK_MONGODB_DBPATH:-/data/db}"
port="${KIOSK_MONGODB_INIT_PORT:-27018}"
log=/tmp/mongodb-x509-users.log
stop() {
  mongod --dbpath "$dbpath" --shutdown >/dev/null 2>&1 || true
}
mongod --dbpath "$dbpath" --bind_ip 127.0.0.1 --port "$port" --fork --logpath "$log" --pidfilepath /tmp/mongodb-x509-users.pid >/dev/null || {
  cat "$log" >&2
  exit 1
}
trap stop EXIT
for _ in $(seq 60); do
  mongosh --quiet --host 127.0.0.1 --port "$port" --eval 'db.adminCommand({ ping: 1 }).ok' >/dev/null 2>&1 && break
  sleep 1
done
mongosh --quiet --host 127.0.0.1 --port "$port" --file "${KIOSK_MONGODB_X509_USERS_JS:-/kiosk/mongodb-x509-users.js}"
