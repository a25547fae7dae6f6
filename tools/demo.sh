#!/usr/bin/env bash
# `make demo`: create or reuse the database winback_demo with Odoo's demo data
# and the addon's own, then serve it at http://localhost:8069 (admin/admin).
# The Sales coupon programs, the Point of Sale and its loyalty programs come
# with it (their demo data too), so that the glue modules install themselves:
# winback_whatsapp_loyalty (the cold campaign gives personal codes),
# winback_whatsapp_pos (paid counter orders are purchases: the demo shows an
# in-store customer in no segment) and winback_whatsapp_pos_loyalty (codes
# redeemed at the counter).
source "$(dirname "$0")/common.sh"
DB=winback_demo
PORT=${WINBACK_DEMO_PORT:-8069}
installed=$(psql -X -A -t -d "$DB" -c \
    "SELECT state FROM ir_module_module WHERE name = 'winback_whatsapp'" 2>/dev/null || true)
if [ "$installed" = installed ]; then
    echo ">> reusing database $DB"
    ARGS=(-u winback_whatsapp -i sale_loyalty,point_of_sale,pos_loyalty)
else
    echo ">> creating database $DB with demo data (a few minutes the first time)"
    drop_db "$DB"
    ARGS=(-i winback_whatsapp,sale_loyalty,point_of_sale,pos_loyalty)
fi
odoo_bin -d "$DB" "${ARGS[@]}" --stop-after-init --no-http --log-level=warn
echo
echo "WhatsApp Win-back demo: http://localhost:$PORT  (login admin, password admin)"
echo
# --database alone exposes this one database (Odoo filters on it when no
# --db-filter is given), as README recommends for a single-database server.
exec "$PY" "$ODOO_SRC/odoo-bin" -c "$ODOO_CONF" --database="$DB" \
    --http-port="$PORT" --log-level=warn
