#!/usr/bin/env bash
# `make test`: a fresh database, the addon installed (an install error or an
# ERROR/CRITICAL log line fails the run), every test of the addon under
# pytest-odoo with the HTTP server (HttpCase tests are skipped without it, and a
# skipped test fails the run); the core addon runs in a database without the
# Point of Sale, so it is proven not to need it. Then a second fresh database
# with the Point of Sale and the Sales and Point of Sale coupon programs, where
# the glue modules winback_whatsapp_pos, winback_whatsapp_loyalty and
# winback_whatsapp_pos_loyalty install themselves (auto_install), and the glue
# modules' tests with the core's purchase source tests. Then the linters.
source "$(dirname "$0")/common.sh"
DB=${WINBACK_TEST_DB:-winback_test}

# The browser tours (HttpCase.start_tour) need a headless Chromium; without one
# Odoo skips them, and a skipped test fails the run. Install Debian's package
# when no Chromium/Chrome is on the PATH (needs root or sudo and apt-get).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null \
        && ! command -v google-chrome >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if command -v apt-get >/dev/null; then
        echo ">> no Chromium found: running '$SUDO apt-get update && $SUDO apt-get install -y chromium' for the browser tours"
        $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y chromium
    else
        echo "no Chromium found and no apt-get: install Chromium (or Google Chrome) for the browser tours" >&2
        exit 1
    fi
fi
require_prefix "$DB"
LOG=$ROOT/.state/install-$DB.log

echo ">> installing winback_whatsapp into a fresh database $DB"
drop_db "$DB"
drop_db "${DB}_reinstall"
if ! odoo_bin -d "$DB" -i winback_whatsapp --without-demo=all --stop-after-init \
        --no-http --log-level=info --logfile="$LOG"; then
    tail -n 50 "$LOG"; echo "install of winback_whatsapp failed (full log: $LOG)" >&2; exit 1
fi
if grep -E '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) ' "$LOG"; then
    echo "the install logged errors (full log: $LOG)" >&2; exit 1
fi
# A copy for the uninstall/reinstall test, taken while nothing is connected.
createdb -T "$DB" "${DB}_reinstall"
export WINBACK_REINSTALL_DB=${DB}_reinstall

echo ">> running the addon's tests"
PYTEST_OUT=$ROOT/.state/pytest-$DB.out
set +e
"$ROOT/.venv/bin/pytest" -p no:cacheprovider --odoo-config="$ODOO_CONF" --odoo-database="$DB" \
    --odoo-http --odoo-extra=test-file=winback_whatsapp/tests --odoo-log-level=warn -rfEs "$@" winback_whatsapp/tests | tee "$PYTEST_OUT"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 5 ] && echo "no test was collected" >&2
    exit "$rc"
fi

# The glue modules: a second database with the apps they join.
POS_DB=${DB}_pos
POS_LOG=$ROOT/.state/install-$POS_DB.log
echo ">> installing winback_whatsapp, point_of_sale, sale_loyalty and pos_loyalty into a fresh database $POS_DB"
drop_db "$POS_DB"
if ! odoo_bin -d "$POS_DB" -i winback_whatsapp,point_of_sale,sale_loyalty,pos_loyalty --without-demo=all \
        --stop-after-init --no-http --log-level=info --logfile="$POS_LOG"; then
    tail -n 50 "$POS_LOG"; echo "install of point_of_sale, sale_loyalty and pos_loyalty failed (full log: $POS_LOG)" >&2; exit 1
fi
if grep -E '^[0-9-]+ [0-9:,]+ [0-9]+ (ERROR|CRITICAL) ' "$POS_LOG"; then
    echo "the install logged errors (full log: $POS_LOG)" >&2; exit 1
fi
for glue in winback_whatsapp_pos:point_of_sale winback_whatsapp_loyalty:sale_loyalty \
        winback_whatsapp_pos_loyalty:pos_loyalty; do
    GLUE_STATE=$(psql -X -At -d "$POS_DB" -c \
        "SELECT state FROM ir_module_module WHERE name = '${glue%%:*}'")
    if [ "$GLUE_STATE" != "installed" ]; then
        echo "${glue%%:*} did not install itself with ${glue##*:} ($GLUE_STATE)" >&2; exit 1
    fi
done
echo ">> running the glue modules' tests"
GLUE_OUT=$ROOT/.state/pytest-$POS_DB.out
set +e
"$ROOT/.venv/bin/pytest" -p no:cacheprovider --odoo-config="$ODOO_CONF" --odoo-database="$POS_DB" \
    --odoo-http --odoo-extra=test-file=winback_whatsapp_pos/tests --odoo-log-level=warn -rfEs "$@" \
    winback_whatsapp_pos/tests winback_whatsapp_loyalty/tests winback_whatsapp_pos_loyalty/tests \
    winback_whatsapp/tests/test_purchase_sources.py | tee "$GLUE_OUT"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    [ "$rc" -eq 5 ] && echo "no glue test was collected" >&2
    exit "$rc"
fi
bash tools/lint.sh
# The run ends with pytest's summary lines: the core addon, the glue modules.
grep -E '^=+ .* in [0-9.]+s' "$PYTEST_OUT" | tail -n 1
grep -E '^=+ .* in [0-9.]+s' "$GLUE_OUT" | tail -n 1
