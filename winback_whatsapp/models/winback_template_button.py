import secrets

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools.intent_keywords import INTENTS
from ..tools.stop_keywords import is_stop as is_stop_keyword

# Every payload the addon generates starts with this: a random token, unique
# per button, that says nothing about the customer, the template or the shop.
PAYLOAD_PREFIX = "WINBACK_"


def new_payload():
    return PAYLOAD_PREFIX + secrets.token_hex(8).upper()


class WinbackTemplateButton(models.Model):
    _name = "winback.template.button"
    _description = "WhatsApp Template Quick-Reply Button"
    _order = "template_id, index"
    _rec_name = "text"

    template_id = fields.Many2one(
        "winback.template", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="template_id.company_id", store=True)
    index = fields.Integer(
        "Position",
        required=True,
        default=0,
        help="The button's position among the template's buttons at Meta, from 0: "
        "WhatsApp matches each payload to its button by this index.",
    )
    text = fields.Char(required=True, help="The button's label, as at Meta.")
    payload = fields.Char(
        required=True,
        default=lambda self: new_payload(),
        copy=False,
        index=True,
        help="Sent with the template for this button and returned by WhatsApp "
        "when the customer taps it: it tells which button was tapped.",
    )
    intent = fields.Selection(
        INTENTS,
        compute="_compute_intent",
        store=True,
        readonly=False,
        required=True,
        precompute=True,
        help="What tapping this button means. Interested: an opportunity for "
        "the customer's salesperson, with the conversation. Not now: the "
        "customer leaves the campaign, without a to-do, and may enter again "
        "after the campaign's snooze. Stop: opt-out of promotional messages "
        "(blacklist and confirmation). Question: a to-do for the salesperson.",
    )
    is_stop = fields.Boolean(
        "STOP",
        compute="_compute_is_stop",
        inverse="_inverse_is_stop",
        store=True,
        help="Tapping this button opts the customer out of promotional messages "
        "(blacklist and confirmation): the button's intent is Stop. On for a "
        "button whose text is a stop keyword.",
    )

    _sql_constraints = [
        (
            "index_uniq",
            "unique(template_id, index)",
            "Two buttons of a template cannot share a position.",
        ),
        (
            "payload_uniq",
            "unique(template_id, payload)",
            "Each button of a template needs its own payload.",
        ),
        (
            "index_range",
            "CHECK(index >= 0 AND index < 10)",
            "Positions go from 0 to 9.",
        ),
    ]

    @api.depends("text")
    def _compute_intent(self):
        for button in self:
            if is_stop_keyword(button.text):
                button.intent = "stop"
            elif not button.intent:
                button.intent = "question"

    @api.depends("intent")
    def _compute_is_stop(self):
        for button in self:
            button.is_stop = button.intent == "stop"

    def _inverse_is_stop(self):
        for button in self:
            if button.is_stop:
                button.intent = "stop"
            elif button.intent == "stop":
                button.intent = "question"

    @api.constrains("intent", "text")
    def _check_stop_keyword(self):
        for button in self:
            if button.intent != "stop" and is_stop_keyword(button.text):
                raise ValidationError(
                    self.env._(
                        "The button %(text)s is a stop keyword: tapping it always "
                        "opts the customer out.",
                        text=button.text,
                    )
                )

    @api.constrains("payload")
    def _check_payload(self):
        for button in self:
            if not (button.payload or "").strip():
                raise ValidationError(self.env._("A button needs a payload."))
