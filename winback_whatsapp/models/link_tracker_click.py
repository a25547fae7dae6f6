from odoo import api, fields, models


class LinkTrackerClick(models.Model):
    _inherit = "link.tracker.click"

    winback_message_id = fields.Many2one(
        "winback.message",
        "WhatsApp message",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
    )
    winback_enrollment_id = fields.Many2one(
        "winback.enrollment",
        "Win-back enrollment",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
    )

    def _prepare_click_values_from_route(self, **route_values):
        """A click on the link of a win-back message (``/r/<code>/w/<id>``)
        counts for the message's enrollment when the message is one of the
        link's campaign: an id typed by hand counts for nobody."""
        values = super()._prepare_click_values_from_route(**route_values)
        message_id = values.pop("winback_message_id", None)
        message = self.env["winback.message"].sudo().browse(message_id).exists()
        link = self.env["link.tracker"].sudo().browse(values.get("link_id"))
        if (
            message.enrollment_id
            and link.campaign_id
            and message.campaign_id.utm_campaign_id == link.campaign_id
        ):
            values["winback_message_id"] = message.id
            values["winback_enrollment_id"] = message.enrollment_id.id
        return values

    @api.model
    def add_click(self, code, **route_values):
        click = super().add_click(code, **route_values)
        if click and click.winback_enrollment_id:
            click.winback_enrollment_id._register_click(click.create_date)
        return click
