# WhatsApp Win-back: developer entry points. See README.md.
.PHONY: help setup test lint demo clean bench-recompute bench-enroll bench-send bench-crash bench-webhook bench-match

help:
	@echo "make demo   - run the product at http://localhost:8069 (admin/admin)"
	@echo "make test   - fresh databases (without, then with the Point of Sale and the coupon programs), install, every test of the addon and its glue modules, linters"
	@echo "make lint   - ruff and pylint-odoo only"
	@echo "make setup  - provision Odoo 18.0 and .venv only"

setup:
	bash tools/provision.sh >/dev/null

test:
	bash tools/test.sh

lint: setup
	bash tools/lint.sh

demo:
	bash tools/demo.sh

clean:
	rm -rf .venv .state

bench-recompute:
	bash tools/bench/run.sh recompute $(BENCH_ARGS)

bench-enroll:
	bash tools/bench/run.sh enroll $(BENCH_ARGS)

bench-send:
	bash tools/bench/run.sh send $(BENCH_ARGS)

bench-crash:
	bash tools/bench/run.sh crash $(BENCH_ARGS)

bench-webhook:
	bash -c 'source tools/common.sh && exec "$$PY" tools/bench/webhook.py --odoo-src "$$ODOO_SRC" --conf "$$ODOO_CONF" --python "$$PY" $(BENCH_ARGS)'

bench-match:
	bash tools/bench/run.sh match $(BENCH_ARGS)
