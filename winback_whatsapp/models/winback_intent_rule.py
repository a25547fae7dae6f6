from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools.intent_keywords import INTENTS, matches, split_keywords


class WinbackIntentRule(models.Model):
    """Keywords that give a free-text reply its intent, per company and
    language: "non ora" in Italian is *Not now*, "interested" in English is
    *Interested*. The first rule that matches, by sequence, wins; a reply no
    rule matches is a *Question* for the salesperson."""

    _name = "winback.intent.rule"
    _description = "Win-back Reply Intent Rule"
    _order = "sequence, id"

    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )
    intent = fields.Selection(
        INTENTS,
        required=True,
        default="question",
        help="What a reply holding one of the keywords means. Interested: an "
        "opportunity for the salesperson. Not now: the customer leaves the "
        "campaign and may enter again after the campaign's snooze. Stop: "
        "opt-out. Question: a to-do for the salesperson.",
    )
    lang = fields.Selection(
        "_lang_selection",
        "Language",
        required=True,
        default=lambda self: self.env.lang or "en_US",
        help="The rule applies to replies of customers in this language (their "
        "contact's language).",
    )
    keywords = fields.Text(
        required=True,
        help="Words or short phrases, separated by commas or one per line. Case, "
        "accents and punctuation do not matter; only whole words match.",
    )

    @api.model
    def _lang_selection(self):
        """Every language Odoo knows, installed or not: rules can be written
        before the language of the customers who will need them is added."""
        langs = self.env["res.lang"].sudo().with_context(active_test=False)
        return [(lang.code, lang.name) for lang in langs.search([], order="name")]

    @api.constrains("keywords")
    def _check_keywords(self):
        for rule in self:
            if not split_keywords(rule.keywords):
                raise ValidationError(
                    self.env._("A reply intent rule needs at least one keyword.")
                )

    @api.model
    def _intent_of_text(self, text, company, lang):
        """The intent of the free text ``text`` of a customer in ``lang``
        (a res.lang code), by ``company``'s rules; 'question' if none
        matches."""
        rules = self.sudo().search(
            [("company_id", "=", company.id), ("lang", "=", lang or "en_US")]
        )
        for rule in rules:
            if matches(text, split_keywords(rule.keywords)):
                return rule.intent
        return "question"
