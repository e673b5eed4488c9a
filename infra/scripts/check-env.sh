#!/usr/bin/env sh
# Check infra/.env before `docker compose up`: the settings Neo4j's image or the deploy script
# would refuse, each named with what to do. Reads the file as Compose does (KEY=VALUE lines,
# optional quotes); never sources it. Exit 1 when something must change.
#   sh infra/scripts/check-env.sh infra/.env
set -u
file="${1:-infra/.env}"
[ -f "$file" ] || { echo "$file: no such file; cp infra/.env.example $file and edit it" >&2; exit 1; }

value() {  # the last KEY=... line's value, surrounding quotes removed
  sed -n "s/^[[:space:]]*$1[[:space:]]*=//p" "$file" | tail -n 1 \
    | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' \
          -e "s/^'\(.*\)'\$/\1/" -e 's/^"\(.*\)"$/\1/'
}

problems=0
problem() { echo "$file: $*" >&2; problems=$((problems + 1)); }

password="$(value NEO4J_PASSWORD)"
if [ -z "$password" ]; then
  problem "NEO4J_PASSWORD is empty; set one of at least 8 characters"
else
  [ "${#password}" -ge 8 ] || problem "NEO4J_PASSWORD has ${#password} characters;" \
    "Neo4j refuses fewer than 8"
  [ "$password" != "neo4j" ] || problem "NEO4J_PASSWORD is 'neo4j', which Neo4j refuses;" \
    "choose another"
  case "$password" in
    */*) problem "NEO4J_PASSWORD holds a '/', which the Neo4j image's NEO4J_AUTH=neo4j/<password>" \
           "cannot carry; choose one without '/'" ;;
  esac
fi

user="$(value NEO4J_USER)"
if [ -n "$user" ] && [ "$user" != "neo4j" ]; then
  echo "$file: note: NEO4J_USER is '$user'; the Neo4j image creates only 'neo4j', so create" \
       "'$user' in Neo4j before the workers log in with it" >&2
fi

deadline="$(value ANGIOKG_NIGHTLY_DEADLINE)"
if [ -n "$deadline" ] && ! echo "$deadline" | grep -Eq '^([01][0-9]|2[0-3]):[0-5][0-9]$'; then
  problem "ANGIOKG_NIGHTLY_DEADLINE is '$deadline'; give an hour as HH:MM, e.g. 06:00"
fi

alert="$(value ANGIOKG_ALERT_BLOCK)"
if [ -n "$alert" ] && ! echo "$alert" | grep -Eq '^[a-z0-9-]+/[A-Za-z0-9_-]+$'; then
  problem "ANGIOKG_ALERT_BLOCK is '$alert'; give <block-type>/<block-name>, e.g." \
    "slack-webhook/oncall"
fi

[ "$problems" -eq 0 ] || exit 1
echo "$file: ok"
