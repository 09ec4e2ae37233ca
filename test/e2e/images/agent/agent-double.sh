#!/bin/sh
# Starts like a real agent app: migrate the database to this image's schema, log, then serve.
set -eu
version=$(cat /etc/agent-version)
db="${DATA_DIR:?}/webui.db"
mkdir -p /app/logs
sqlite3 "$db" "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT);
               CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
               INSERT OR IGNORE INTO meta VALUES ('schema', '1');"
schema=$(sqlite3 "$db" "SELECT v FROM meta WHERE k = 'schema'")
if [ "$version" -ge 2 ] && [ "$schema" -lt 2 ]; then
  # The kind of one-way migration a pre-change snapshot exists for.
  sqlite3 "$db" "ALTER TABLE notes ADD COLUMN tags TEXT DEFAULT 'migrated';
                 UPDATE notes SET body = upper(body);
                 UPDATE meta SET v = '2' WHERE k = 'schema';"
fi
echo "$(date -u +%FT%TZ) agent v$version started, schema $(sqlite3 "$db" "SELECT v FROM meta WHERE k = 'schema'")" >>/app/logs/agent.log
exec /usr/local/bin/busybox httpd -f -p 8080 -h /www
