/** @odoo-module **/

import { registry } from "@web/core/registry";
import { openWinbackMenu } from "@winback_whatsapp/js/tours/tour_utils";

// Issue 16 as an administrator meets it: the cold segment by the customer's
// own rhythm, an intent on a template's quick-reply buttons, then what the
// campaign cost and whether it paid on the Lift over Holdout report.
registry.category("web_tour.tours").add("winback_whatsapp_rhythm_intents_tour", {
    url: "/odoo",
    steps: () => [
        ...openWinbackMenu("winback_whatsapp.menu_winback_segment", "Open the segments"),
        {
            content: "Open the cold segment",
            trigger: ".o_data_row td[name='name']:contains('Cold')",
            run: "click",
        },
        {
            content: "Place customers by their own rhythm",
            trigger: ".o_field_widget[name='mode'] input[data-value='factor']",
            run: "click",
        },
        {
            content: "Cold from four times their typical interval",
            trigger: ".o_field_widget[name='min_factor'] input",
            run: "edit 4",
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            trigger: ".o_form_saved",
        },
        {
            content: "Back to the segments",
            trigger: ".o_breadcrumb .o_back_button a, .o_breadcrumb li.breadcrumb-item a",
            run: "click",
        },
        {
            content: "The segment reads its rhythm range, with its fallback in days",
            trigger: ".o_data_row:contains('Cold') td[name='range_display']:contains('4×+ rhythm')",
        },
        {
            trigger: '.dropdown-toggle[data-menu-xmlid="winback_whatsapp.menu_winback_root"]',
            run: "click",
        },
        {
            content: "Open the templates",
            trigger: '.dropdown-item[data-menu-xmlid="winback_whatsapp.menu_winback_template"]',
            run: "click",
        },
        {
            content: "Open the campaign's template",
            trigger: ".o_data_row td[name='name']:contains('winback_report_test')",
            run: "click",
        },
        {
            content: "Edit the intent of the 'Tell me more' button",
            trigger:
                ".o_field_widget[name='button_ids'] .o_data_row:contains('Tell me more') td[name='intent']",
            run: "click",
        },
        {
            content: "Tell me more means Interested: an opportunity for the salesperson",
            trigger: ".o_field_widget[name='button_ids'] .o_selected_row td[name='intent'] select",
            run: 'select "interested"',
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            trigger: ".o_form_saved",
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
            content: "The campaign's messaging cost sits beside its lift",
            trigger: ".o_data_row:contains('Report campaign') td[name='cost']:contains('0.80')",
        },
        {
            content: "and whether it paid: its ROI",
            trigger: ".o_data_row:contains('Report campaign') td[name='roi']:not(:empty)",
        },
    ],
});
