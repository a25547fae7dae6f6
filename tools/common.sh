# Shared setup for the tooling scripts: sourced, not run.
#   - provisions Odoo and .venv (tools/provision.sh), sets ODOO_SRC and PY;
#   - finds PostgreSQL (tools/pg.sh) and exports libpq's variables;
#   - writes .state/odoo.conf with the addons path.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ODOO_SRC=$(bash tools/provision.sh | tail -n 1)
export ODOO_SRC
PY=$ROOT/.venv/bin/python
eval "$(bash tools/pg.sh)"
mkdir -p .state
ODOO_CONF=$ROOT/.state/odoo.conf
cat > "$ODOO_CONF" <<CONF
[options]
addons_path = $ODOO_SRC/addons,$ODOO_SRC/odoo/addons,$ROOT
data_dir = $ROOT/.state/data
admin_passwd = admin
list_db = True
CONF

# Databases the tooling creates all start with this prefix; nothing else is
# ever dropped.
require_prefix() {
    case "$1" in winback_*) ;; *) echo "refusing to touch database '$1': not prefixed winback_" >&2; exit 1 ;; esac
}
drop_db() {
    require_prefix "$1"
    dropdb --if-exists --force "$1"
    rm -rf "$ROOT/.state/data/filestore/$1"
}
odoo_bin() { "$PY" "$ODOO_SRC/odoo-bin" -c "$ODOO_CONF" "$@"; }
