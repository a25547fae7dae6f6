import ast
import email
import os
import re
import subprocess
import sys
import tempfile
import uuid
import zipfile

import odoo
from odoo.tests import TransactionCase, tagged
from odoo.tools import config

MODULE = "winback_whatsapp"
ADDON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ERROR_LINE = re.compile(r"^\S+ \S+ \d+ (ERROR|CRITICAL) ", re.MULTILINE)

# Runs inside `odoo-bin shell`: uninstall the addon, then install it again in a
# fresh registry, and print the module's state after each step.
REINSTALL_SCRIPT = f"""
import odoo
module = env["ir.module.module"].search([("name", "=", "{MODULE}")])
module.button_immediate_uninstall()
env.cr.commit()
env = odoo.api.Environment(env.cr, odoo.SUPERUSER_ID, {{}})
module = env["ir.module.module"].search([("name", "=", "{MODULE}")])
print("AFTER-UNINSTALL", module.state)
module.button_immediate_install()
env.cr.commit()
env = odoo.api.Environment(env.cr, odoo.SUPERUSER_ID, {{}})
module = env["ir.module.module"].search([("name", "=", "{MODULE}")])
print("AFTER-REINSTALL", module.state)
"""


@tagged("post_install", "-at_install")
class TestInstall(TransactionCase):
    def test_installed_as_application(self):
        """An admin finds the addon in the Apps list, installed, with its icon."""
        module = self.env["ir.module.module"].search([("name", "=", MODULE)])
        self.assertEqual(module.state, "installed")
        self.assertTrue(module.application)
        self.assertEqual(module.shortdesc, "WhatsApp Win-back")
        self.assertEqual(module.icon, f"/{MODULE}/static/description/icon.png")
        self.assertIn("inactive customers", module.description_html or "")
        apps = self.env["ir.module.module"].search(
            [("application", "=", True), ("state", "=", "installed")]
        )
        self.assertIn(module, apps)

    def _odoo_shell(self, dbname, script):
        odoo_bin = os.path.join(os.path.dirname(odoo.__path__[0]), "odoo-bin")
        cmd = [sys.executable, odoo_bin, "shell", "-d", dbname, "--no-http"]
        cmd += ["--log-level=info", f"--addons-path={config['addons_path']}"]
        if config.rcfile and os.path.exists(config.rcfile):
            cmd += ["-c", config.rcfile]
        return subprocess.run(
            cmd, input=script, capture_output=True, text=True, timeout=1200
        )

    def test_uninstall_and_reinstall(self):
        """Uninstalling and reinstalling the addon leaves no error.

        `make test` hands over a copy of the freshly installed database
        (WINBACK_REINSTALL_DB); run elsewhere, the test installs one itself.
        """
        dbname = os.environ.get("WINBACK_REINSTALL_DB")
        created = not dbname
        if created:
            dbname = f"winback_test_reinstall_{uuid.uuid4().hex[:8]}"
            self._odoo_shell(dbname, "")  # creates the database
            install = self._odoo_shell(
                dbname,
                f'env["ir.module.module"].search([("name", "=", "{MODULE}")])'
                ".button_immediate_install()\n",
            )
            self.assertFalse(ERROR_LINE.findall(install.stderr), install.stderr)
        try:
            run = self._odoo_shell(dbname, REINSTALL_SCRIPT)
        finally:
            if created:
                odoo.service.db.exp_drop(dbname)
        errors = [
            line for line in run.stderr.splitlines() if ERROR_LINE.match(line + " ")
        ]
        self.assertEqual(run.returncode, 0, run.stderr[-4000:])
        self.assertFalse(errors, "\n".join(errors))
        self.assertIn("AFTER-UNINSTALL uninstalled", run.stdout)
        self.assertIn("AFTER-REINSTALL installed", run.stdout)


@tagged("post_install", "-at_install")
class TestWheel(TransactionCase):
    def test_pip_builds_the_addon_as_an_oca_wheel(self):
        """`pip wheel` of the addon's folder builds odoo-addon-winback_whatsapp
        with whool (pyproject.toml), from the manifest's own metadata, the
        addon inside as odoo/addons/winback_whatsapp."""
        with open(os.path.join(ADDON_DIR, "__manifest__.py")) as f:
            manifest = ast.literal_eval(f.read())
        with tempfile.TemporaryDirectory() as dist:
            build = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "--no-deps",
                 "--no-build-isolation", "--disable-pip-version-check",
                 "--wheel-dir", dist, ADDON_DIR],
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            self.assertEqual(build.returncode, 0, build.stdout + build.stderr)
            (wheel,) = os.listdir(dist)
            self.assertRegex(
                wheel,
                r"^odoo_addon_winback_whatsapp-"
                + re.escape(manifest["version"])
                + r"(\.\d+)?-py3-none-any\.whl$",
            )
            with zipfile.ZipFile(os.path.join(dist, wheel)) as archive:
                names = archive.namelist()
                (metadata_name,) = (n for n in names if n.endswith("/METADATA"))
                metadata = email.message_from_bytes(archive.read(metadata_name))
                generator = archive.read(metadata_name[: -len("METADATA")] + "WHEEL")
        self.assertIn(b"Generator: Whool", generator)
        self.assertEqual(metadata["Name"], "odoo-addon-winback_whatsapp")
        self.assertTrue(metadata["Version"].startswith(manifest["version"]))
        self.assertEqual(metadata["Summary"], manifest["summary"])
        self.assertEqual(metadata["License"], manifest["license"])
        self.assertEqual(metadata["Author"], manifest["author"])
        self.assertEqual(metadata["Home-page"], manifest["website"])
        requires = metadata.get_all("Requires-Dist")
        self.assertIn("odoo==18.0.*", requires)
        for python_dependency in manifest["external_dependencies"]["python"]:
            self.assertIn(python_dependency, requires)
        for path in (
            "__manifest__.py",
            "i18n/it.po",
            "static/description/icon.png",
            "models/winback_sender.py",
            "views/winback_menus.xml",
        ):
            self.assertIn(f"odoo/addons/{MODULE}/{path}", names)  # fmt: skip
