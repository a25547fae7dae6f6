/** @odoo-module **/

import { registry } from "@web/core/registry";
import { openWinbackMenu } from "@winback_whatsapp/js/tours/tour_utils";

// A marketer gives a cold campaign personal codes: on the campaign's offer,
// a coupon program replaces the static coupon code; a shared promotion code
// is not offered.
registry.category("web_tour.tours").add("winback_whatsapp_loyalty_tour", {
    url: "/odoo",
    steps: () => [
        ...openWinbackMenu("winback_whatsapp.menu_winback_campaign", "Open the campaigns"),
        {
            content: "Open the cold campaign",
            trigger: ".o_kanban_record:contains('Cold coupons'), .o_data_row:contains('Cold coupons') .o_data_cell",
            run: "click",
        },
        {
            content: "Its offer is on the Pacing & measure tab",
            trigger: ".o_notebook_headers a[name='pacing']",
            run: "click",
        },
        {
            content: "The static coupon code is there until a program is chosen",
            trigger: ".o_field_widget[name='coupon_code'] input",
        },
        {
            trigger: ".o_field_widget[name='loyalty_program_id'] input",
            run: "edit Win-back",
        },
        {
            content: "Coupon programs are offered, not a shared promotion code",
            trigger: ".o-autocomplete--dropdown-menu:not(:has(a:contains('Win-back shared code'))) .o-autocomplete--dropdown-item a:contains('Win-back 15%')",
            run: "click",
        },
        {
            content: "The personal codes replace the static code",
            trigger: ".o_form_view:not(:has(.o_field_widget[name='coupon_code'])) .o_field_widget[name='loyalty_program_id'] input:value('Win-back 15%')",
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "The campaign is saved with its coupon program",
            trigger: ".o_form_saved .o_field_widget[name='loyalty_program_id'] input:value('Win-back 15%')",
        },
    ],
});
