/** @odoo-module **/

import { Component } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { TagsList } from "@web/core/tags_list/tags_list";
import { standardFieldProps } from "@web/views/fields/standard_field_props";

// A many2one shown as one coloured tag, like many2many_tags shows several:
// the segments list shows each segment's partner tag this way. Read-only.
export class Many2OneTagField extends Component {
    static template = "winback_whatsapp.Many2OneTagField";
    static components = { TagsList };
    static props = {
        ...standardFieldProps,
        colorField: { type: String, optional: true },
    };

    get tags() {
        const value = this.props.record.data[this.props.name];
        if (!value) {
            return [];
        }
        const color = this.props.colorField
            ? this.props.record.data[this.props.colorField]
            : 0;
        return [{ id: value[0], text: value[1], colorIndex: color || 0 }];
    }
}

export const many2OneTagField = {
    component: Many2OneTagField,
    displayName: _t("Tag"),
    supportedTypes: ["many2one"],
    supportedOptions: [
        {
            label: _t("Color field"),
            name: "color_field",
            type: "field",
            availableTypes: ["integer"],
        },
    ],
    extractProps: ({ options }) => ({ colorField: options.color_field }),
};

registry.category("fields").add("many2one_tag", many2OneTagField);
