#!/bin/sh
# Starts like a real agent app: migrate the database to this image's schema, log, then serve.
set -eu
version=$(cat /etc/agent-version)
db="${DATA_DIR:?}/webui.db"
mkdir -p /app/logs
# A first start creates the database; later starts leave its bytes alone unless they migrate.
[ -f "$db" ] || sqlite3 "$db" "CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT);
                               CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
                               INSERT INTO meta VALUES ('schema', '1');"
schema=$(sqlite3 "$db" "SELECT v FROM meta WHERE k = 'schema'")
if [ "$version" -ge 2 ] && [ "$schema" -lt 2 ]; then
  # The kind of one-way migration a pre-change snapshot exists for.
  sqlite3 "$db" "ALTER TABLE notes ADD COLUMN tags TEXT DEFAULT 'migrated';
                 UPDATE notes SET body = upper(body);
                 UPDATE meta SET v = '2' WHERE k = 'schema';"
fi
echo "$(date -u +%FT%TZ) agent v$version started, schema $(sqlite3 "$db" "SELECT v FROM meta WHERE k = 'schema'")" >>/app/logs/agent.log
# Serve until SIGTERM, like a real server (PID 1 gets no default signal handlers).
/usr/local/bin/busybox httpd -f -p 8080 -h /www &
trap 'kill $!' TERM INT
wait
