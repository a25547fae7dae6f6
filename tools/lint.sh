#!/usr/bin/env bash
# Linters, run from the venv: ruff (check and format) and pylint-odoo's
# mandatory checks (.pylintrc-mandatory).
set -euo pipefail
cd "$(dirname "$0")/.."
V=.venv/bin
echo ">> ruff check"; "$V/ruff" check .
echo ">> ruff format --check"; "$V/ruff" format --check .
echo ">> pylint-odoo (mandatory checks)"
"$V/pylint" --rcfile=.pylintrc-mandatory winback_whatsapp winback_whatsapp_pos \
    winback_whatsapp_loyalty winback_whatsapp_pos_loyalty
echo ">> linters clean"
