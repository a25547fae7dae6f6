#!/usr/bin/env bash
# Provision Odoo 18.0 and the project's virtualenv.
#
# Odoo's source is taken from, in this order:
#   1. $ODOO_SRC, when it points at an Odoo source tree;
#   2. the cache folder ${XDG_CACHE_HOME:-$HOME/.cache}/winback_whatsapp/odoo-18.0;
#   3. a shallow clone of Odoo's official 18.0 branch into that cache folder.
# The virtualenv (.venv) receives Odoo's requirements, Odoo itself (a .pth
# file pointing at the source) and tools/requirements.txt. A stamp keyed on
# every input makes a second run with nothing changed a no-op.
#
# Prints the Odoo source path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/winback_whatsapp
ODOO_REPO=${ODOO_REPO:-https://github.com/odoo/odoo.git}

is_odoo_src() { [ -f "$1/odoo/release.py" ] && [ -d "$1/addons" ] && [ -f "$1/requirements.txt" ]; }

if [ -n "${ODOO_SRC:-}" ]; then
    is_odoo_src "$ODOO_SRC" || { echo "ODOO_SRC=$ODOO_SRC is not an Odoo source tree" >&2; exit 1; }
    SRC=$(cd "$ODOO_SRC" && pwd)
elif is_odoo_src "$CACHE_DIR/odoo-18.0"; then
    SRC=$CACHE_DIR/odoo-18.0
else
    echo ">> cloning Odoo 18.0 into $CACHE_DIR/odoo-18.0 (set ODOO_SRC to use an existing tree)" >&2
    mkdir -p "$CACHE_DIR"
    rm -rf "$CACHE_DIR/odoo-18.0.partial"
    git clone --quiet --depth 1 --branch 18.0 "$ODOO_REPO" "$CACHE_DIR/odoo-18.0.partial" >&2
    mv "$CACHE_DIR/odoo-18.0.partial" "$CACHE_DIR/odoo-18.0"
    SRC=$CACHE_DIR/odoo-18.0
fi
grep -q "^version_info = (18, 0," "$SRC/odoo/release.py" \
    || { echo "$SRC is not Odoo 18.0" >&2; exit 1; }

stamp_input() {
    "$PYTHON" --version 2>&1
    echo "$SRC"
    cat "$SRC/requirements.txt" tools/requirements.txt tools/provision.sh
}
STAMP=$(stamp_input | sha256sum | cut -d' ' -f1)
if [ -f "$VENV/.provisioned" ] && [ "$(cat "$VENV/.provisioned")" = "$STAMP" ]; then
    echo "$SRC"
    exit 0
fi

echo ">> provisioning $VENV with Odoo from $SRC" >&2
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" >&2
# Odoo pins cbor2==5.4.2, which does not build on Python 3.11: take 5.6.x.
# python-ldap only serves auth_ldap and needs libldap headers: skip it.
# psycopg2 is taken as psycopg2-binary (same module, no compiler needed).
REQS=$VENV/odoo-requirements.txt
sed -E \
    -e 's/^cbor2==5\.4\.2/cbor2==5.6.5/' \
    -e '/^python-ldap/d' \
    -e 's/^psycopg2==/psycopg2-binary==/' \
    "$SRC/requirements.txt" > "$REQS"
pip_install() {
    # Some machines' pip configuration names local indexes that may be absent:
    # keep pip's real messages, drop that noise.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
    return "${PIPESTATUS[0]}"
}
pip_install --upgrade pip wheel "setuptools<80"
pip_install -r "$REQS" -r tools/requirements.txt
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$SRC" > "$SITE/odoo-src.pth"
"$VENV/bin/python" -c "import odoo, phonenumbers, pytest_odoo; assert odoo.release.version_info[:2] == (18, 0)" >&2
echo "$STAMP" > "$VENV/.provisioned"
echo "$SRC"
