/** @odoo-module **/

import { registry } from "@web/core/registry";
import { openWinbackMenu } from "@winback_whatsapp/js/tours/tour_utils";

// Opens CRM > Win-back > Reporting > Results as a user would, and checks the
// pivot shows the results by segment with the reply and conversion rates.
registry.category("web_tour.tours").add("winback_whatsapp_reporting_tour", {
    url: "/odoo",
    steps: () => [
        ...openWinbackMenu("winback_whatsapp.menu_winback_report", "Open the results report"),
        {
            content: "The pivot shows real data, not the sample",
            trigger: ".o_pivot:not(.o_view_sample_data) table",
        },
        {
            content: "A segment of the test campaign is a row",
            trigger: '.o_pivot th.o_pivot_header_cell_closed:contains("Lukewarm")',
        },
        {
            content: "The conversion rate is a measure",
            trigger: '.o_pivot th.o_pivot_measure_row:contains("Conversion rate (%)")',
        },
        {
            content: "Switch to the graph",
            trigger: ".o_switch_view.o_graph",
            run: "click",
        },
        {
            content: "The graph is drawn",
            trigger: ".o_graph_renderer canvas",
        },
    ],
});
