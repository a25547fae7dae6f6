/** @odoo-module **/

import { stepUtils } from "@web_tour/tour_service/tour_utils";

/**
 * The steps a user takes from the home menu to a menu of CRM › Win-back:
 * the CRM app, the Win-back menu, then the item (its XML id).
 */
export function openWinbackMenu(menuXmlid, content) {
    return [
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
            content,
            trigger: `.dropdown-item[data-menu-xmlid="${menuXmlid}"]`,
            run: "click",
        },
    ];
}

/**
 * Save the campaign form, start it, and read what happens next: the
 * notification with the eligible customers, the running state, the
 * progress with the first send.
 */
export function startCampaign() {
    return [
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
            content: "Start says how many customers enter and when",
            trigger: ".o_notification:contains('1 customers eligible')",
        },
        {
            content: "The campaign runs",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Running')",
        },
        {
            content: "The progress shows the eligible customers and the first send",
            trigger: "div[name='progress']:contains('customers eligible'):contains('Next messages go out from')",
        },
    ];
}

/**
 * On an enrollment form of a simulator account: the customer replies, and
 * the salesperson opens the customer from their activities.
 */
export function replyAndOpenFromActivities(customer) {
    return [
        {
            content: "Simulate the customer's reply",
            trigger: ".o_form_view button[name='action_simulate_reply']",
            run: "click",
        },
        {
            content: "The enrollment is replied",
            trigger: ".o_field_widget[name='state'] [aria-checked='true']:contains('Replied')",
        },
        {
            content: "The salesperson's activities",
            trigger: ".o_menu_systray i[aria-label='Activities']",
            run: "click",
        },
        {
            trigger: ".o-mail-ActivityGroup:contains('Contact')",
            run: "click",
        },
        {
            content: "The customer who replied",
            trigger: `.o_kanban_record:contains('${customer}'), .o_data_row:contains('${customer}') .o_data_cell`,
            run: "click",
        },
    ];
}
