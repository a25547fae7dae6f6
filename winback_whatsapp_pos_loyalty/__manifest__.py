# Copyright 2026 winback_whatsapp contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "WhatsApp Win-back - Personal Coupons at the Point of Sale",
    "summary": "A personal win-back code redeemed at the Point of Sale converts "
    "its enrollment",
    "version": "18.0.1.0.0",
    "category": "Marketing",
    "website": "https://github.com/winback-whatsapp/winback_whatsapp",
    "author": "winback_whatsapp contributors",
    "maintainers": [],
    "license": "LGPL-3",
    "development_status": "Alpha",
    "installable": True,
    "auto_install": True,
    "depends": ["winback_whatsapp_pos", "winback_whatsapp_loyalty", "pos_loyalty"],
}
