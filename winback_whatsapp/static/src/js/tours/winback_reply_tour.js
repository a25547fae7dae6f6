/** @odoo-module **/

import { registry } from "@web/core/registry";
import { replyAndOpenFromActivities } from "@winback_whatsapp/js/tours/tour_utils";

// The salesperson's loop, on a simulator account: the customer replies, the
// salesperson finds the Win-back reply in their activities, answers it from
// the customer's form with the WhatsApp composer, and the activity is done.
// Starts on the enrollment form (the test gives its URL).
registry.category("web_tour.tours").add("winback_whatsapp_reply_tour", {
    steps: () => [
        ...replyAndOpenFromActivities("Mario Rossi"),
        {
            content: "The activity names the campaign and the step, for the salesperson",
            trigger:
                ".o-mail-Activity:contains('Answer the WhatsApp reply to Tour campaign, step Last call'):contains('for Sally Sales')",
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
            run: "edit Yes, the offer holds until Sunday!",
        },
        {
            trigger: ".modal-footer button[name='action_send']",
            run: "click",
        },
        {
            content: "The activity is done, with the answer as its feedback",
            trigger:
                ".o-mail-Message:contains('Answered on WhatsApp: Yes, the offer holds until Sunday!')",
        },
        {
            content: "No Win-back reply left to do",
            trigger: ".o-mail-Chatter:not(:has(.o-mail-Activity))",
        },
    ],
});
