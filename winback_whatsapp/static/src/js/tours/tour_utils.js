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
