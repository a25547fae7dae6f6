/** @odoo-module **/

import { registry } from "@web/core/registry";
import { openWinbackMenu } from "@winback_whatsapp/js/tours/tour_utils";

// Preview a step on the phone panel: open a campaign, pick a sample customer,
// and read the WhatsApp bubble with their values and the template's buttons.
registry.category("web_tour.tours").add("winback_whatsapp_phone_preview_tour", {
    url: "/odoo",
    steps: () => [
        ...openWinbackMenu("winback_whatsapp.menu_winback_campaign", "Open the campaigns"),
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
        {
            content: "Back to the messages",
            trigger: ".o_notebook .nav-link:contains('Messages')",
            run: "click",
        },
        {
            content: "Open the second message in its form",
            trigger:
                ".o_field_widget[name='step_ids'] .o_data_row:contains('Reminder') .o_list_record_open_form_view button",
            run: "click",
        },
        {
            content: "The step's phone panel shows its bubble for the sample customer",
            trigger:
                ".o_form_view .o_field_widget[name='phone_preview'] .o_winback_phone_caption:contains('Reminder · day 4')",
        },
        {
            trigger:
                ".o_field_widget[name='phone_preview'] .o_winback_bubble:contains('Ciao Giulia! Your code: SPRING10')",
        },
        {
            trigger:
                ".o_field_widget[name='phone_preview'] .o_winback_bubble_button:contains('Yes please')",
        },
    ],
});

// The lift as a user reads it: pivot columns Treated and Holdout, the lift
// list's headers in full, the campaign's chart with both groups' intervals.
registry.category("web_tour.tours").add("winback_whatsapp_lift_tour", {
    url: "/odoo",
    steps: () => [
        ...openWinbackMenu("winback_whatsapp.menu_winback_report", "Open the results report"),
        {
            content: "The pivot's columns read Treated and Holdout",
            trigger:
                ".o_pivot:not(.o_view_sample_data) thead th.o_pivot_header_cell_closed:contains('Treated')",
        },
        {
            trigger: ".o_pivot thead th.o_pivot_header_cell_closed:contains('Holdout')",
            run() {
                const headers = [
                    ...document.querySelectorAll(".o_pivot thead th.o_pivot_header_cell_closed"),
                ].map((th) => th.textContent.trim());
                if (headers.includes("Yes") || headers.includes("No")) {
                    throw new Error(`Pivot columns read ${headers.join(", ")}`);
                }
            },
        },
        {
            trigger: '.dropdown-toggle[data-menu-xmlid="winback_whatsapp.menu_winback_root"]',
            run: "click",
        },
        {
            content: "Open the lift over holdout",
            trigger: '.dropdown-item[data-menu-xmlid="winback_whatsapp.menu_winback_lift"]',
            run: "click",
        },
        {
            content: "Every column header reads in full",
            trigger: ".o_list_table thead th[data-name='incremental_revenue']",
            run() {
                const cut = [...document.querySelectorAll(".o_list_table thead th span.text-truncate")]
                    .filter((span) => span.scrollWidth > span.clientWidth)
                    .map((span) => span.textContent);
                if (cut.length) {
                    throw new Error(`Truncated headers: ${cut.join(", ")}`);
                }
            },
        },
        {
            content: "The messaging cost and the ROI sit beside the lift",
            trigger: ".o_list_table thead th[data-name='cost']",
        },
        {
            trigger: ".o_list_table thead th[data-name='roi']",
        },
        {
            trigger: '.dropdown-toggle[data-menu-xmlid="winback_whatsapp.menu_winback_root"]',
            run: "click",
        },
        {
            trigger: '.dropdown-item[data-menu-xmlid="winback_whatsapp.menu_winback_campaign"]',
            run: "click",
        },
        {
            content: "Open the campaign",
            trigger:
                ".o_data_row td[name='name']:contains('Report campaign'), " +
                ".o_kanban_record:contains('Report campaign')",
            run: "click",
        },
        {
            content: "Open the lift chart",
            trigger: ".o_notebook .nav-link:contains('Lift')",
            run: "click",
        },
        {
            content: "Both groups are drawn with their 95% interval",
            trigger: ".o_winback_lift_treated .o_winback_lift_whisker",
        },
        {
            trigger: ".o_winback_lift_holdout .o_winback_lift_whisker",
        },
        {
            content: "The lift and the verdict are written under the chart",
            trigger: ".o_winback_lift_summary:contains('Lift:')",
        },
        {
            content: "What it cost, and whether it paid, under the chart",
            trigger: ".o_field_widget[name='roi']",
        },
        {
            trigger: ".o_winback_lift_too_small:contains('Sample too small to tell')",
        },
    ],
});
