from odoo import models


class IrModuleModule(models.Model):
    _inherit = "ir.module.module"

    def _load_module_terms(
        self, modules, langs, overwrite=False, imported_module=False
    ):
        """A language loaded after the segments were created (Settings ›
        Languages) also translates their default names and their partner
        tags ("Win-back: Tiepidi"), which are records, not terms of a file."""
        res = super()._load_module_terms(
            modules, langs, overwrite=overwrite, imported_module=imported_module
        )
        if "winback_whatsapp" in modules and "winback.segment" in self.env:
            self.env["winback.segment"].sudo().with_context(active_test=False).search(
                []
            )._translate_names(list(langs))
        return res
