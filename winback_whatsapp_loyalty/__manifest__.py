# Copyright 2026 winback_whatsapp contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "WhatsApp Win-back - Personal Coupons",
    "summary": "One personal coupon code per win-back customer, expiring at the "
    "deadline the message states, through Odoo's coupon programs",
    "version": "18.0.1.0.0",
    "category": "Marketing",
    "website": "https://github.com/winback-whatsapp/winback_whatsapp",
    "author": "winback_whatsapp contributors",
    "maintainers": [],
    "license": "LGPL-3",
    "development_status": "Alpha",
    "installable": True,
    "auto_install": True,
    "depends": ["winback_whatsapp", "sale_loyalty"],
    "data": [
        "security/ir.model.access.csv",
        "views/winback_campaign_views.xml",
        "views/winback_enrollment_views.xml",
        "views/winback_report_views.xml",
    ],
    "demo": ["demo/winback_loyalty_demo.xml"],
    "assets": {
        "web.assets_tests": [
            "winback_whatsapp_loyalty/static/src/js/tours/*.js",
        ],
    },
}
