# Copyright 2026 winback_whatsapp contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
{
    "name": "WhatsApp Win-back",
    "summary": "Win back inactive customers with short WhatsApp campaigns "
    "by inactivity segment, measured against a holdout group",
    "version": "18.0.2.0.0",
    "category": "Marketing",
    "website": "https://github.com/winback-whatsapp/winback_whatsapp",
    "author": "winback_whatsapp contributors",
    "maintainers": [],
    "license": "LGPL-3",
    "development_status": "Alpha",
    "application": True,
    "installable": True,
    "depends": ["sale", "crm", "sms"],
    "external_dependencies": {"python": ["phonenumbers", "requests"]},
    "data": [
        "security/winback_security.xml",
        "security/ir.model.access.csv",
        "views/winback_menus.xml",
        "data/ir_cron_data.xml",
        "data/ir_config_parameter_data.xml",
        "data/winback_segment_data.xml",
        "views/winback_segment_views.xml",
        "views/res_partner_views.xml",
        "views/winback_account_views.xml",
        "views/winback_template_views.xml",
        "views/winback_message_views.xml",
        "views/winback_enrollment_views.xml",
        "views/winback_campaign_views.xml",
        "wizard/winback_composer_views.xml",
        "views/winback_report_views.xml",
        "views/res_config_settings_views.xml",
        "security/winback_report_security.xml",
        "data/mail_activity_type_data.xml",
        "views/winback_webhook_event_views.xml",
        "views/winback_unmatched_views.xml",
        "views/winback_bsuid_optout_views.xml",
    ],
    "demo": [
        "demo/winback_demo.xml",
        "demo/winback_demo_customers.xml",
    ],
    "post_init_hook": "post_init_hook",
    "assets": {
        "web.assets_backend": [
            "winback_whatsapp/static/src/scss/*.scss",
        ],
        "web.assets_tests": [
            "winback_whatsapp/static/src/js/tours/*.js",
        ],
    },
}
