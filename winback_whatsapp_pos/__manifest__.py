# Copyright 2026 winback_whatsapp contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "WhatsApp Win-back - Point of Sale",
    "summary": "Count paid Point of Sale orders as purchases in WhatsApp Win-back",
    "version": "18.0.1.0.0",
    "category": "Marketing",
    "website": "https://github.com/winback-whatsapp/winback_whatsapp",
    "author": "winback_whatsapp contributors",
    "maintainers": [],
    "license": "LGPL-3",
    "development_status": "Alpha",
    "installable": True,
    "auto_install": True,
    "depends": ["winback_whatsapp", "point_of_sale"],
    "data": [
        "views/res_config_settings_views.xml",
        "views/winback_enrollment_views.xml",
    ],
    "demo": ["demo/winback_pos_demo.xml"],
}
