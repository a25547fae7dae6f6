/** @odoo-module **/

import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

// Preview a step on the phone panel: open a campaign, pick a sample customer,
// and read the WhatsApp bubble with their values and the template's buttons.
registry.category("web_tour.tours").add("winback_whatsapp_phone_preview_tour", {
    url: "/odoo",
    steps: () => [
        stepUtils.showAppsMenuItem(),
        {
            trigger: '.o_app[data-menu-xmlid="crm.crm_menu_root"]',
            run: "click",
        },
        {
            trigger: '.dropdown-toggle[data-menu-xmlid="winback_whatsapp.menu_winback_root"]',
            run: "click",
        },
        {
            content: "Open the campaigns",
            trigger: '.dropdown-item[data-menu-xmlid="winback_whatsapp.menu_winback_campaign"]',
            run: "click",
        },
        {
            content: "Open the campaign",
            trigger:
                ".o_data_row td[name='name']:contains('Phone preview campaign'), " +
                ".o_kanban_record:contains('Phone preview campaign')",
            run: "click",
        },
        {
            content: "Open the phone panel",
            trigger: ".o_notebook .nav-link:contains('Phone preview')",
            run: "click",
        },
        {
            content: "Pick a sample customer",
            trigger: ".o_field_widget[name='preview_partner_id'] input",
            run: "edit Giulia Rossi",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Giulia Rossi')",
            run: "click",
        },
        {
            content: "The bubble shows the customer's values",
            trigger:
                ".o_field_widget[name='phone_preview'] .o_winback_bubble:contains('Ciao Giulia! Your code: SPRING10')",
        },
        {
            content: "The header image is shown",
            trigger: ".o_field_widget[name='phone_preview'] .o_winback_bubble img.o_winback_bubble_image",
        },
        {
            content: "The quick-reply buttons are under the bubble",
            trigger:
                ".o_field_widget[name='phone_preview'] .o_winback_bubble_button:contains('Yes please')",
        },
        {
            trigger:
                ".o_field_widget[name='phone_preview'] .o_winback_bubble_button:contains('Stop promotions')",
        },
        {
            content: "Keep the sample customer",
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            trigger: ".o_form_saved",
        },
    ],
});
