/** @odoo-module **/

import { registry } from "@web/core/registry";
import {
    openWinbackMenu,
    replyAndOpenFromActivities,
    startCampaign,
} from "@winback_whatsapp/js/tours/tour_utils";

// The whole path of a salesperson who is also the shop's marketer, on a
// simulator account, in two parts: between them the scheduled actions run
// as the cron workers run them (enroll, queue and send; the simulator's
// statuses).

// Part 1: create a campaign from the kanban, preview its first message on
// the phone panel, start it and see the progress.
registry.category("web_tour.tours").add("winback_whatsapp_marketer_path_tour", {
    url: "/odoo",
    steps: () => [
        ...openWinbackMenu("winback_whatsapp.menu_winback_campaign", "Open the campaigns"),
        {
            content: "Create a campaign from the kanban",
            trigger: ".o_kanban_view .o-kanban-button-new",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='name'] input",
            run: "edit Marketer path",
        },
        {
            trigger: ".o_field_widget[name='segment_ids'] input",
            run: "edit Lukewarm",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Lukewarm')",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='account_id'] input",
            run: "edit Path simulator",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Path simulator')",
            run: "click",
        },
        {
            content: "Add the first message",
            trigger: ".o_field_widget[name='step_ids'] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='name'] input",
            run: "edit Hello",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='template_id'] input",
            run: "edit path hello",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Winback path hello (en)')",
            run: "click",
        },
        {
            content: "The step previews its message for a customer of the segment",
            trigger: ".o_field_widget[name='step_ids'] .o_data_row [name='preview_line']:contains('Hi Giulia, we have news for you')",
        },
        {
            content: "Add the second message",
            trigger: ".o_field_widget[name='step_ids'] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_data_row:nth-child(2).o_selected_row .o_field_widget[name='name'] input",
            run: "edit Last call",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_data_row:nth-child(2).o_selected_row .o_field_widget[name='delay_days'] input",
            run: "edit 4",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_data_row:nth-child(2).o_selected_row .o_field_widget[name='template_id'] input",
            run: "edit path last call",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Winback path last call (en)')",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_data_row:nth-child(2) [name='preview_line']:contains('Hi Giulia, a last call')",
        },
        {
            trigger: ".o_form_button_save",
            run: "click",
        },
        {
            trigger: ".o_form_saved",
        },
        {
            content: "Open the phone panel",
            trigger: ".o_notebook .nav-link:contains('Phone preview')",
            run: "click",
        },
        {
            content: "Pick a sample customer",
            trigger: ".o_field_widget[name='preview_partner_id'] input",
            run: "edit Giulia Neri",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Giulia Neri')",
            run: "click",
        },
        {
            content: "The bubble shows the first message with the customer's values",
            trigger:
                ".o_field_widget[name='phone_preview'] .o_winback_bubble:contains('Hi Giulia, we have news for you')",
        },
        ...startCampaign(),
    ],
});

// Part 2, after the crons sent the first message: the card counts it; the
// customer replies (simulator), the salesperson finds the activity assigned
// to them and answers from the customer's chatter; the activity is done,
// and the funnel shows one sent, one replied.
registry.category("web_tour.tours").add("winback_whatsapp_marketer_reply_tour", {
    url: "/odoo",
    steps: () => [
        ...openWinbackMenu("winback_whatsapp.menu_winback_campaign"),
        {
            content: "The card counts the message sent, no reply yet",
            trigger: ".o_kanban_record:contains('Marketer path') [name='funnel'] span[title='Sent']:contains('1')",
        },
        {
            trigger: ".o_kanban_record:contains('Marketer path') [name='funnel'] span[title='Replied']:contains('0')",
        },
        {
            trigger: ".o_kanban_record:contains('Marketer path')",
            run: "click",
        },
        {
            content: "The progress counts the message sent",
            trigger: "div[name='progress'] [name='message_sent_count']:contains('1')",
        },
        {
            content: "The Sent smart button opens who received it",
            trigger: ".oe_stat_button:contains('Sent') .o_stat_value:contains('1')",
            run: "click",
        },
        {
            trigger: ".o_data_row:contains('Giulia Neri') .o_data_cell",
            run: "click",
        },
        ...replyAndOpenFromActivities("Giulia Neri"),
        {
            content: "The activity names the campaign and the step, for the salesperson",
            trigger:
                ".o-mail-Activity:contains('Answer the WhatsApp reply to Marketer path, step Hello'):contains('for Sally Sales')",
        },
        {
            content: "Answer on WhatsApp",
            trigger: ".o_form_view .oe_stat_button:contains('WhatsApp')",
            run: "click",
        },
        {
            content: "Inside the 24-hour window: the time left",
            trigger: ".modal .alert-info:contains('Free text possible for')",
        },
        {
            trigger: ".modal .o_field_widget[name='body'] textarea",
            run: "edit Thank you Giulia, see you on Saturday!",
        },
        {
            trigger: ".modal-footer button[name='action_send']",
            run: "click",
        },
        {
            content: "The activity is done, with the answer as its feedback",
            trigger:
                ".o-mail-Message:contains('Answered on WhatsApp: Thank you Giulia, see you on Saturday!')",
        },
        {
            content: "No Win-back reply left to do",
            trigger: ".o-mail-Chatter:not(:has(.o-mail-Activity))",
        },
        ...openWinbackMenu("winback_whatsapp.menu_winback_campaign"),
        {
            content: "The card's funnel: one sent, one replied",
            trigger: ".o_kanban_record:contains('Marketer path') [name='funnel'] span[title='Sent']:contains('1')",
        },
        {
            trigger: ".o_kanban_record:contains('Marketer path') [name='funnel'] span[title='Replied']:contains('1')",
        },
        {
            trigger: ".o_kanban_record:contains('Marketer path')",
            run: "click",
        },
        {
            content: "The smart buttons: one sent, one replied",
            trigger: ".oe_stat_button:contains('Sent') .o_stat_value:contains('1')",
        },
        {
            trigger: ".oe_stat_button:contains('Replied') .o_stat_value:contains('1')",
        },
    ],
});
