/** @odoo-module **/

import { registry } from "@web/core/registry";
import { openWinbackMenu } from "@winback_whatsapp/js/tours/tour_utils";

// A new user's path through CRM > Win-back: create a segment, create a
// two-message campaign on it, start it, then open the results.
registry.category("web_tour.tours").add("winback_whatsapp_campaign_tour", {
    url: "/odoo",
    steps: () => [
        ...openWinbackMenu("winback_whatsapp.menu_winback_segment", "Open the segments"),
        {
            trigger: ".o_list_button_add",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='name'] input",
            run: "edit Fresh",
        },
        {
            trigger: ".o_field_widget[name='min_days'] input",
            run: "edit 30",
        },
        {
            trigger: ".o_field_widget[name='max_days'] input",
            run: "edit 59",
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "The segment is saved with its own tag",
            trigger: ".o_form_saved .o_field_widget[name='tag_id']:contains('Win-back: Fresh')",
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
            trigger: ".o_list_button_add, .o-kanban-button-new",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='name'] input",
            run: "edit Fresh news",
        },
        {
            trigger: ".o_field_widget[name='segment_ids'] input",
            run: "edit Fresh",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Fresh')",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='account_id'] input",
            run: "edit Tour account",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Tour account')",
            run: "click",
        },
        {
            content: "Add the first message",
            trigger: ".o_field_widget[name='step_ids'] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='name'] input",
            run: "edit News",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='template_id'] input",
            run: "edit winback_tour_news",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Winback tour news')",
            run: "click",
        },
        {
            content: "Add the second message",
            trigger: ".o_field_widget[name='step_ids'] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='name'] input",
            run: "edit Follow-up",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='delay_days'] input",
            run: "edit 3",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='template_id'] input",
            run: "edit winback_tour_news",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Winback tour news')",
            run: "click",
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            content: "Start the campaign",
            trigger: ".o_form_saved button[name='action_start']",
            run: "click",
        },
        {
            content: "The campaign runs",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Running')",
        },
        {
            trigger: '.dropdown-toggle[data-menu-xmlid="winback_whatsapp.menu_winback_root"]',
            run: "click",
        },
        {
            content: "Open the results report",
            trigger: '.dropdown-item[data-menu-xmlid="winback_whatsapp.menu_winback_report"]',
            run: "click",
        },
        {
            content: "The report opens",
            trigger: ".o_pivot",
        },
    ],
});
