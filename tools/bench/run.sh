#!/usr/bin/env bash
# Run one benchmark: `bash tools/bench/run.sh <name> [options]`.
# Installs the addon into a scratch database winback_bench_<name>, runs
# tools/bench/<name>.py against it, then drops the database.
source "$(dirname "$0")/../common.sh"
NAME=$1; shift
DB=winback_bench_$NAME
drop_db "$DB"
# The recompute bench also counts Point of Sale orders: it installs the Point
# of Sale, and with it the glue module winback_whatsapp_pos.
MODULES=winback_whatsapp
[ "$NAME" = recompute ] && MODULES=winback_whatsapp,point_of_sale
echo ">> installing $MODULES into $DB" >&2
odoo_bin -d "$DB" -i "$MODULES" --without-demo=all --stop-after-init --no-http \
    --log-level=warn --logfile="$ROOT/.state/install-$DB.log"
trap 'drop_db "$DB"' EXIT
"$PY" "tools/bench/$NAME.py" --config "$ODOO_CONF" --database "$DB" "$@"
