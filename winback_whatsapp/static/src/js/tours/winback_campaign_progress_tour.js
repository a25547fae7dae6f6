/** @odoo-module **/

import { registry } from "@web/core/registry";
import { openWinbackMenu, startCampaign } from "@winback_whatsapp/js/tours/tour_utils";

// A marketer without help: from the campaigns kanban, create a campaign on
// the Lukewarm segment with two messages picked by their readable names,
// start it, and see what happens next: how many are eligible, when the first
// messages go out, the messages locked while it runs, the card running on the
// kanban. Then the segments list shows each segment's tag.
registry.category("web_tour.tours").add("winback_whatsapp_campaign_progress_tour", {
    url: "/odoo",
    steps: () => [
        ...openWinbackMenu("winback_whatsapp.menu_winback_campaign", "Open the campaigns"),
        {
            content: "The campaigns open as cards",
            trigger: ".o_kanban_view .o-kanban-button-new",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='name'] input",
            run: "edit Spring hello",
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
            run: "edit Progress account",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Progress account')",
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
            content: "Templates are searched and shown by their readable name",
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='template_id'] input",
            run: "edit tour hello",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Winback tour hello (en)')",
            run: "click",
        },
        {
            content: "The step previews its message for a customer of the segment",
            trigger: ".o_field_widget[name='step_ids'] .o_data_row [name='preview_line']:contains('Hi Giulia, spring is here')",
        },
        {
            content: "Add the second message",
            trigger: ".o_field_widget[name='step_ids'] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='name'] input",
            run: "edit Reminder",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='delay_days'] input",
            run: "edit 4",
        },
        {
            trigger: ".o_field_widget[name='step_ids'] .o_selected_row .o_field_widget[name='template_id'] input",
            run: "edit tour reminder",
        },
        {
            trigger: ".o-autocomplete--dropdown-item a:contains('Winback tour reminder (en)')",
            run: "click",
        },
        ...startCampaign(),
        {
            content: "The progress counts the messages",
            trigger: "div[name='progress']:contains('queued'):contains('failed')",
        },
        {
            content: "The messages of a running campaign are locked, and the form says why",
            trigger: "div[name='steps_locked']:contains('Pause the campaign')",
        },
        {
            trigger: ".o_field_widget[name='step_ids']:not(:has(.o_field_x2many_list_row_add))",
        },
        {
            content: "Back to the campaigns",
            trigger: ".o_breadcrumb .o_back_button a, .o_breadcrumb li.breadcrumb-item a:contains('Campaigns')",
            run: "click",
        },
        {
            content: "The card shows the campaign running, its segment and its funnel",
            trigger: ".o_kanban_record:contains('Spring hello'):contains('Running'):contains('Lukewarm') [name='funnel']",
        },
        {
            trigger: '.dropdown-toggle[data-menu-xmlid="winback_whatsapp.menu_winback_root"]',
            run: "click",
        },
        {
            content: "Open the segments",
            trigger: '.dropdown-item[data-menu-xmlid="winback_whatsapp.menu_winback_segment"]',
            run: "click",
        },
        {
            content: "Each segment shows its tag",
            trigger: ".o_list_view .o_field_many2one_tag .o_tag:contains('Win-back: Lukewarm')",
        },
    ],
});
