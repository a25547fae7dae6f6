import re
from datetime import timedelta

from markupsafe import Markup

from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import format_date

from ..tools.stop_keywords import is_stop
from ..tools.whatsapp_markup import whatsapp_markup
from .winback_template_button import new_payload

PLACEHOLDER = re.compile(r"{{\s*(\d+)\s*}}")
# Meta refuses a parameter with a line break, a tab or more than four spaces
# in a row (error 132018): every run of white space becomes one space.
WHITESPACE = re.compile(r"\s+")
META_STATUS = {
    "APPROVED": "approved",
    "PENDING": "pending",
    "REJECTED": "rejected",
    "PAUSED": "paused",
    "DISABLED": "disabled",
    "IN_APPEAL": "pending",
}


class WinbackTemplate(models.Model):
    _name = "winback.template"
    _description = "WhatsApp Message Template"
    _order = "name, language, id"

    name = fields.Char(
        required=True, help="The template's name at Meta (lowercase, underscores)."
    )
    active = fields.Boolean(default=True)
    account_id = fields.Many2one("winback.account", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    language = fields.Char(required=True, default="en", help="Language code, e.g. it.")
    category = fields.Selection(
        [
            ("marketing", "Marketing"),
            ("utility", "Utility"),
            ("authentication", "Authentication"),
        ],
        required=True,
        default="marketing",
    )
    status = fields.Selection(
        [
            ("draft", "Draft"),
            ("pending", "Pending"),
            ("approved", "Approved"),
            ("rejected", "Rejected"),
            ("paused", "Paused"),
            ("disabled", "Disabled"),
            ("archived", "Archived"),
            ("deleted", "Deleted"),
        ],
        default="draft",
        required=True,
        help="Meta's review status; only approved templates are sent. Meta's "
        "status webhooks keep it current: a paused, disabled, archived, "
        "deleted or rejected template pauses the running campaigns that use "
        "it.",
    )
    meta_id = fields.Char("Meta template ID", readonly=True, copy=False)
    quality = fields.Selection(
        [
            ("green", "High"),
            ("yellow", "Medium"),
            ("red", "Low"),
            ("unknown", "Pending"),
        ],
        readonly=True,
        copy=False,
        help="Meta's quality score of the template (its quality webhook): "
        "how customers received it. Low quality leads Meta to pause it.",
    )
    at_risk = fields.Boolean(
        "At risk",
        readonly=True,
        copy=False,
        help="Meta flagged the template: customers gave negative feedback and "
        "Meta may disable it. It is still sent; review its wording and its "
        "audience. Cleared when Meta approves or reinstates it.",
    )
    meta_pause = fields.Selection(
        [
            ("FIRST_PAUSE", "First pause (3 hours)"),
            ("SECOND_PAUSE", "Second pause (6 hours)"),
            ("RATE_LIMITING_PAUSE", "Rate-limiting pause"),
        ],
        "Meta pause",
        readonly=True,
        copy=False,
        help="Which pause Meta applied. A third pause disables the template.",
    )
    disable_date = fields.Datetime(
        "Disabled on",
        readonly=True,
        copy=False,
        help="When Meta disabled the template, or will disable it if it "
        "stays flagged.",
    )
    meta_note = fields.Text(
        "Meta's last word",
        readonly=True,
        copy=False,
        help="The last status event Meta sent for the template, with its "
        "reason and explanation.",
    )
    status_before_archive = fields.Char(
        readonly=True,
        copy=False,
        help="The status Meta restores when it unarchives the template.",
    )
    body = fields.Text(
        required=True, help="Body text with {{1}}, {{2}}... placeholders."
    )
    header_image_url = fields.Char(
        "Header image",
        help="The sample image of the template's image header, as Meta lists "
        "it (HTTPS). Shown above the text in the phone preview; empty when "
        "the template has no image header.",
    )
    param_ids = fields.One2many("winback.template.param", "template_id", "Placeholders")
    button_ids = fields.One2many(
        "winback.template.button",
        "template_id",
        "Quick-reply buttons",
        help="The template's quick-reply buttons, in Meta's order. Each is sent "
        "with its own payload; a STOP button opts the customer out, any other "
        "is a reply.",
    )

    _sql_constraints = [
        (
            "name_lang_uniq",
            "unique(account_id, name, language)",
            "A template exists once per account and language.",
        ),
    ]

    @api.depends("name", "language")
    def _compute_display_name(self):
        """Marketers read "Spring offer (it)", not Meta's technical name
        "spring_offer": the technical name shows only in the template form."""
        for template in self:
            label = (template.name or "").replace("_", " ").strip().capitalize()
            template.display_name = (
                f"{label} ({template.language})" if template.language else label
            )

    def _search_display_name(self, operator, value):
        """Found by its technical name or by the name as displayed."""
        domain = super()._search_display_name(operator, value)
        if operator in ("ilike", "=ilike", "like", "=like") and isinstance(value, str):
            technical = value.strip().replace(" ", "_")
            if technical != value:
                domain = ["|", *domain, ("name", operator, technical)]
        return domain

    @api.constrains("header_image_url")
    def _check_header_image_url(self):
        for template in self:
            if template.header_image_url and not template.header_image_url.startswith(
                "https://"
            ):
                raise ValidationError(
                    self.env._("The header image is an HTTPS address (https://...).")
                )

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _phone_bubble(self, partner, campaign=None):
        """The template as ``partner`` would see it on their phone: a
        WhatsApp bubble (header image, text with the customer's values,
        WhatsApp's *bold* _italic_ ~strike~) and its quick-reply buttons.

        Everything written by a user or a customer is escaped: the markup is
        built with ``markupsafe`` only."""
        self.ensure_one()
        try:
            text = self._render(partner, campaign=campaign)[1]
        except UserError as error:
            return Markup(
                '<div class="o_winback_bubble_error alert alert-warning">%s</div>'
            ) % str(error.args[0] if error.args else error)
        header = (
            Markup('<img class="o_winback_bubble_image" src="%s" alt="%s"/>')
            % (self.header_image_url, self.env._("Header image"))
            if self.header_image_url
            else Markup()
        )
        buttons = Markup().join(
            Markup(
                '<div class="o_winback_bubble_button">'
                '<i class="fa fa-reply me-1" role="img" aria-label="%s"></i>%s</div>'
            )
            % (self.env._("Quick reply"), button.text)
            for button in self.button_ids.sorted("index")
        )
        return Markup(
            '<div class="o_winback_bubble_wrap">'
            '<div class="o_winback_bubble">%s'
            '<div class="o_winback_bubble_text">%s</div>'
            "</div>%s</div>"
        ) % (header, whatsapp_markup(text), buttons)

    def _check_placeholders(self):
        """Every {{N}} of the body is mapped to a customer value (checked when
        a campaign starts: templates are often created before their
        placeholders)."""
        for template in self:
            used = {int(n) for n in PLACEHOLDER.findall(template.body or "")}
            mapped = set(template.param_ids.mapped("position"))
            if used - mapped:
                raise UserError(
                    self.env._(
                        "Template %(name)s: map every placeholder to a customer "
                        "value (missing: %(missing)s).",
                        name=template.name,
                        missing=", ".join(
                            f"{{{{{n}}}}}" for n in sorted(used - mapped)
                        ),
                    )
                )

    def _render(self, partner, enrollment=None, campaign=None, shorten=None):
        """The body parameters for ``partner`` and the text a reader sees, in
        the company of the environment (``with_company``). ``shorten``, when
        given, replaces the links of each parameter (tracked short links).

        :return: (list of parameter strings in placeholder order, body text)
        :raise UserError: a placeholder has neither a value nor a fallback:
            WhatsApp refuses empty parameters, so nothing is sent.
        """
        self.ensure_one()
        # Company-dependent values (last purchase...) of the company the
        # template is rendered in.
        partner = partner.with_company(self.env.company)
        values = {}
        for param in self.param_ids.sorted("position"):
            value = self._clean_param(
                param.url
                if param.source == "link"
                else self._param_value(param.source, partner, enrollment, campaign)
            )
            value = value or self._clean_param(param.fallback)
            if value and shorten:
                value = shorten(value)
            if not value:
                raise UserError(
                    self.env._(
                        "Template %(template)s: no value for {{%(position)s}} "
                        "(%(value)s) for %(partner)s and no fallback.",
                        template=self.name,
                        position=param.position,
                        value=dict(param._fields["source"].selection)[param.source],
                        partner=partner.display_name,
                    )
                )
            values[param.position] = value
        text = PLACEHOLDER.sub(
            lambda match: values.get(int(match.group(1)), match.group(0)), self.body
        )
        return [values[position] for position in sorted(values)], text

    @api.model
    def _clean_param(self, value):
        return WHITESPACE.sub(" ", value or "").strip()

    def _param_value(self, source, partner, enrollment, campaign=None):
        lang = partner.lang or self.env.lang
        if source == "first_name":
            return (partner.name or "").split(" ")[0]
        if source == "salesperson":
            return partner.user_id.name or ""
        if source == "last_order_date":
            last = partner.winback_last_order_date
            return format_date(self.env, last, lang_code=lang) if last else ""
        if source == "last_product":
            line = (
                self.env["sale.order.line"]
                .sudo()
                .search(
                    [
                        (
                            "order_id.partner_id",
                            "child_of",
                            partner.commercial_partner_id.id,
                        ),
                        ("order_id.state", "=", "sale"),
                        ("order_id.company_id", "=", self.env.company.id),
                        ("display_type", "=", False),
                    ],
                    order="id desc",
                    limit=1,
                )
            )
            return line.product_id.name or ""
        campaign = enrollment.campaign_id if enrollment else campaign
        if source == "coupon_code":
            return campaign.coupon_code if campaign else ""
        if source == "deadline" and campaign:
            deadline = self._deadline_date(enrollment, campaign)
            return format_date(self.env, deadline, lang_code=lang)
        return ""

    @api.model
    def _deadline_date(self, enrollment, campaign):
        """The date the ``deadline`` placeholder states: the enrollment's
        date (today for a preview) plus the campaign's deadline days."""
        start = (enrollment and enrollment.create_date) or fields.Datetime.now()
        return start.date() + timedelta(days=campaign.deadline_days)

    @api.model
    def _sync_from_meta(self, account, remote_templates):
        """Create or update ``account``'s templates from Meta's listing."""
        existing = {
            (t.name, t.language): t
            for t in self.with_context(active_test=False).search(
                [("account_id", "=", account.id)]
            )
        }
        for remote in remote_templates:
            body = next(
                (
                    c.get("text")
                    for c in remote.get("components", [])
                    if c.get("type") == "BODY"
                ),
                "",
            )
            buttons = next(
                (
                    c.get("buttons") or []
                    for c in remote.get("components", [])
                    if c.get("type") == "BUTTONS"
                ),
                [],
            )
            vals = {
                "status": META_STATUS.get(remote.get("status"), "pending"),
                "meta_id": remote.get("id"),
                "category": (remote.get("category") or "marketing").lower(),
                "body": body or "-",
                "header_image_url": self._meta_header_image(
                    remote.get("components", [])
                ),
            }
            template = existing.get((remote.get("name"), remote.get("language")))
            if template:
                template.write(vals)
                template._sync_buttons_from_meta(buttons)
                continue
            positions = sorted({int(n) for n in PLACEHOLDER.findall(body or "")})
            self.create(
                {
                    **vals,
                    "name": remote.get("name"),
                    "language": remote.get("language"),
                    "account_id": account.id,
                    "param_ids": [
                        (0, 0, {"position": n, "source": "first_name"})
                        for n in positions
                    ],
                    "button_ids": [
                        Command.create({"index": index, "text": text})
                        for index, text in self._meta_quick_replies(buttons)
                    ],
                }
            )
        return True

    @api.model
    def _meta_header_image(self, components):
        """The sample image URL of an IMAGE header in Meta's components
        (``example.header_handle``), or False: no header, another format, or
        anything but an HTTPS address."""
        header = next((c for c in components if c.get("type") == "HEADER"), {})
        if (header.get("format") or "").upper() != "IMAGE":
            return False
        handles = (header.get("example") or {}).get("header_handle") or []
        url = handles[0] if handles and isinstance(handles[0], str) else ""
        return url if url.startswith("https://") else False

    @api.model
    def _meta_quick_replies(self, buttons):
        """``(index, text)`` of the quick-reply buttons of Meta's BUTTONS
        component. The index is the button's position among ALL the
        template's buttons (URL and phone ones included), as Meta counts."""
        return [
            (index, button.get("text") or "-")
            for index, button in enumerate(buttons)
            if button.get("type") == "QUICK_REPLY"
        ]

    def _sync_buttons_from_meta(self, buttons):
        """Align the stored quick replies with Meta's: a button keeps its
        payload (and its STOP mark) while its position and text are unchanged;
        a changed text is a new button whose STOP mark follows its keyword."""
        self.ensure_one()
        remote = dict(self._meta_quick_replies(buttons))
        commands = []
        for button in self.button_ids:
            text = remote.pop(button.index, None)
            if text is None:
                commands.append(Command.delete(button.id))
            elif text != button.text:
                commands.append(
                    Command.update(
                        button.id,
                        {
                            "text": text,
                            "payload": new_payload(),
                            "intent": "stop" if is_stop(text) else "question",
                        },
                    )
                )
        commands += [
            Command.create({"index": index, "text": text})
            for index, text in sorted(remote.items())
        ]
        if commands:
            self.button_ids = commands

    def _quick_reply_payloads(self):
        """``[(index, payload)]`` of the buttons, for the send request."""
        self.ensure_one()
        return [(b.index, b.payload) for b in self.button_ids.sorted("index")]
