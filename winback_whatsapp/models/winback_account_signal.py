import logging

from odoo import api, fields, models

from ..tools.webhook_parser import (
    LIMIT_TIERS,
    AccountUpdateEvent,
    CapabilityEvent,
    PhoneQualityEvent,
    TemplateQualityEvent,
    TemplateStatusEvent,
)

_logger = logging.getLogger(__name__)

# Meta's template status events (message_template_status_update): the
# status each gives the template (None: unchanged), and whether it flags
# the template at risk (True), clears the flag (False) or leaves it (None).
# UNARCHIVED restores the status the template had before it was archived.
TEMPLATE_EVENTS = {
    "APPROVED": ("approved", False),
    "REINSTATED": ("approved", False),
    "REJECTED": ("rejected", None),
    "PENDING": ("pending", None),
    "IN_APPEAL": ("pending", None),
    "PAUSED": ("paused", None),
    "DISABLED": ("disabled", None),
    "ARCHIVED": ("archived", None),
    "UNARCHIVED": (None, None),
    "DELETED": ("deleted", None),
    "PENDING_DELETION": ("deleted", None),
    "FLAGGED": (None, True),
    "LOCKED": (None, None),
    "LIMIT_EXCEEDED": (None, None),
}
# A template in one of these statuses cannot be sent: the running campaigns
# that use it pause.
UNUSABLE = ("paused", "disabled", "archived", "deleted", "rejected")
PAUSE_TITLES = ("FIRST_PAUSE", "SECOND_PAUSE", "RATE_LIMITING_PAUSE")
QUALITY_SCORES = {
    "GREEN": "green",
    "YELLOW": "yellow",
    "RED": "red",
    "UNKNOWN": "unknown",
}
# Restrictions of the account (account_update ACCOUNT_RESTRICTION) that
# leave the sending of templates possible: recorded and alerted, sending
# goes on. Any other one, known or not, pauses the account.
NON_SENDING_RESTRICTIONS = (
    "RESTRICTED_ADD_PHONE_NUMBER_ACTION",
    "RESTRICTED_BIZ_INITIATED_AND_USER_INITIATED_CALLING",
    "RESTRICTED_BUSINESS_INITIATED_CALLING",
    "RESTRICTED_USER_INITIATED_CALLING",
    "RESTRICTED_USER_INITIATED_CALLING_CALL_BUTTON_HIDDEN",
    "RESTRICTED_UTILITY_TEMPLATES",
)
# account_update events with nothing for Win-back to do (pricing, partners,
# business verification, ads): kept in the event as received.
INFORMATIVE_ACCOUNT_EVENTS = (
    "AD_ACCOUNT_LINKED",
    "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE",
    "BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE",
    "MM_LITE_TERMS_SIGNED",
    "PARTNER_ADDED",
    "PARTNER_APP_INSTALLED",
    "PARTNER_APP_UNINSTALLED",
    "PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE",
    "PARTNER_REMOVED",
    "VOLUME_BASED_PRICING_TIER_UPDATE",
)
# phone_number_quality_update events that only move the messaging limit.
LIMIT_EVENTS = ("UPGRADE", "DOWNGRADE", "THROUGHPUT_UPGRADE", "ONBOARDING")


class WinbackAccountSignal(models.AbstractModel):
    """What Meta says about the WhatsApp Business Account itself, through
    the webhook: its templates' status and quality, its number's quality,
    its restrictions and its messaging limit.

    Takes the webhook parser's account-signal events
    (tools/webhook_parser.py: ``TemplateStatusEvent``,
    ``TemplateQualityEvent``, ``PhoneQualityEvent``, ``AccountUpdateEvent``,
    ``CapabilityEvent``) for the account whose webhook key and app secret
    authenticated the call, once ``winback.webhook.event`` has checked that
    they name its WhatsApp Business Account. Reuses the send path's own
    mechanisms: a template Meta stops pauses its running campaigns with an
    activity for their responsible (as a template error does), a
    restricted or flagged account pauses (``winback.account._pause``).
    Resuming stays a human decision."""

    _name = "winback.account.signal"
    _description = "Meta's account signals"

    @api.model
    def _is_foreign_waba(self, account, waba_id):
        """Whether a change naming ``waba_id`` is about another WhatsApp
        Business Account than ``account``'s: always when the account has no
        WABA ID. A change that names none is the account's."""
        return bool(waba_id) and waba_id != (account.waba_id or "").strip()

    @api.model
    def _apply_signals(self, account, change):
        """Apply the events of one change to ``account``; returns the notes
        for the webhook event (what could not be applied)."""
        handlers = {
            TemplateStatusEvent: self._apply_template_status,
            TemplateQualityEvent: self._apply_template_quality,
            PhoneQualityEvent: self._apply_phone_quality,
            AccountUpdateEvent: self._apply_account_update,
            CapabilityEvent: self._apply_capability,
        }
        notes = []
        for signal in change.signals:
            note = handlers[type(signal)](account, signal)
            if note:
                notes.append(note)
        return notes

    # ------------------------------------------------------------
    # Templates
    # ------------------------------------------------------------

    @api.model
    def _find_template(self, account, template_id, name, language):
        """The account's template Meta names: by its Meta ID, else by its
        name and language (Meta writes en_US or en-US)."""
        Template = self.env["winback.template"].with_context(active_test=False)
        if template_id:
            template = Template.search(
                [("account_id", "=", account.id), ("meta_id", "=", template_id)],
                limit=1,
            )
            if template:
                return template
        if not name:
            return Template
        domain = [("account_id", "=", account.id), ("name", "=", name)]
        if language:
            domain.append(
                (
                    "language",
                    "in",
                    [language, language.replace("-", "_"), language.replace("_", "-")],
                )
            )
        return Template.search(domain, order="id", limit=1)

    @api.model
    def _missing_template(self, event):
        return self.env._(
            "Template %(name)s (%(language)s) is not in Odoo: Meta's %(event)s "
            "was not applied. Sync the account's templates.",
            name=event.name or event.template_id or "?",
            language=event.language or "?",
            event=getattr(event, "event", None) or "quality update",
        )

    @api.model
    def _apply_template_status(self, account, event):
        """A template's status follows Meta's: a paused, disabled, archived,
        deleted or rejected template pauses the running campaigns that use
        it; a flagged one is still sent but shown at risk."""
        template = self._find_template(
            account, event.template_id, event.name, event.language
        )
        if not template:
            return self._missing_template(event)
        kind = (event.event or "").upper()
        vals = {"meta_note": self._template_note(event)}
        if event.template_id and not template.meta_id:
            vals["meta_id"] = event.template_id
        if kind not in TEMPLATE_EVENTS:
            template.write(vals)
            return self.env._(
                "Template %(name)s: Meta's event %(event)s is unknown to "
                "Win-back: kept, the template is unchanged.",
                name=template.name,
                event=event.event or "?",
            )
        status, risk = TEMPLATE_EVENTS[kind]
        was = template.status
        if kind == "ARCHIVED" and was != "archived":
            vals["status_before_archive"] = was
        if kind == "UNARCHIVED" and was == "archived":
            status = template.status_before_archive or "pending"
            vals["status_before_archive"] = False
        if status:
            vals["status"] = status
        if risk is not None:
            vals["at_risk"] = risk
        if kind == "PAUSED":
            vals["meta_pause"] = event.title if event.title in PAUSE_TITLES else False
        elif status == "approved":
            vals["meta_pause"] = False
        if event.disable_date:
            vals["disable_date"] = event.disable_date
        elif risk is False:
            vals["disable_date"] = False
        template.write(vals)
        if template.status in UNUSABLE:
            self._pause_campaigns(template)
        elif kind == "FLAGGED":
            self._notify_campaigns(template, "running", self._flagged_text(template))
        elif template.status == "approved" and was in UNUSABLE:
            self._notify_campaigns(
                template,
                "paused",
                self.env._(
                    "Meta approved template %(template)s again. The campaign "
                    "stays paused: resume it when you decide.",
                    template=template.name,
                ),
                activity=True,
            )
        return None

    @api.model
    def _template_note(self, event):
        """Meta's event in one line: the event, its reason, its title and
        description, the rejection details."""
        parts = [event.event or "?"]
        if event.reason and event.reason.upper() != "NONE":
            parts.append(event.reason)
        parts += [
            part
            for part in (
                event.title,
                event.description,
                event.rejection_reason,
                event.recommendation,
            )
            if part
        ]
        return " - ".join(parts)

    @api.model
    def _flagged_text(self, template):
        if template.disable_date:
            return self.env._(
                "Meta flagged template %(template)s: customers gave negative "
                "feedback. It is still sent, but Meta disables it on %(date)s "
                "unless its quality improves.",
                template=template.name,
                date=fields.Datetime.to_string(template.disable_date),
            )
        return self.env._(
            "Meta flagged template %(template)s: customers gave negative "
            "feedback. It is still sent, but Meta may disable it.",
            template=template.name,
        )

    @api.model
    def _campaigns_using(self, template, state):
        return (
            self.env["winback.campaign"]
            .sudo()
            .search(
                [("step_ids.template_id", "in", template.ids), ("state", "=", state)]
            )
        )

    @api.model
    def _pause_campaigns(self, template):
        """Pause the running campaigns using ``template``, with an activity
        for their responsible (as a template error does): their messages
        wait, nothing is lost."""
        status = dict(template._fields["status"]._description_selection(self.env))
        detail = template.meta_note or template.status
        for campaign in self._campaigns_using(template, "running"):
            campaign.state = "paused"
            campaign._alert_responsible(
                self.env._(
                    "Campaign paused: Meta set template %(template)s to "
                    "%(status)s (%(detail)s). Its messages wait; resume the "
                    "campaign once the template is approved again, or replace "
                    "it in the campaign's steps.",
                    template=template.name,
                    status=status[template.status],
                    detail=detail,
                )
            )

    @api.model
    def _notify_campaigns(self, template, state, note, activity=False):
        for campaign in self._campaigns_using(template, state):
            if activity:
                campaign._alert_responsible(note)
            else:
                campaign.message_post(body=note, subtype_xmlid="mail.mt_note")

    @api.model
    def _apply_template_quality(self, account, event):
        template = self._find_template(
            account, event.template_id, event.name, event.language
        )
        if not template:
            return self._missing_template(event)
        quality = QUALITY_SCORES.get((event.new_score or "").upper())
        if not quality:
            return self.env._(
                "Template %(name)s: Meta's quality score %(score)s is unknown "
                "to Win-back: kept, the template is unchanged.",
                name=template.name,
                score=event.new_score or "?",
            )
        vals = {"quality": quality}
        if event.template_id and not template.meta_id:
            vals["meta_id"] = event.template_id
        template.write(vals)
        return None

    # ------------------------------------------------------------
    # The account
    # ------------------------------------------------------------

    @api.model
    def _apply_limit(self, account, tier):
        """Meta's messaging limit of the business: shown on the account, and
        the daily unique recipients the sender allows follow it. Returns a
        note when the tier is unknown."""
        if not tier:
            return None
        limits = dict(
            account._fields["messaging_limit"]._description_selection(self.env)
        )
        if tier not in limits:
            return self.env._(
                "Meta's messaging limit %(tier)s is unknown to Win-back: kept, "
                "the account is unchanged.",
                tier=tier,
            )
        if tier == account.messaging_limit:
            return None
        vals = {"messaging_limit": tier}
        if tier in LIMIT_TIERS:
            vals["daily_recipient_limit"] = LIMIT_TIERS[tier]
        account.write(vals)
        account.message_post(
            body=self.env._(
                "Meta's messaging limit is now %(limit)s.", limit=limits[tier]
            ),
            subtype_xmlid="mail.mt_note",
        )
        return None

    @api.model
    def _apply_capability(self, account, event):
        return self._apply_limit(account, event.limit)

    @api.model
    def _apply_phone_quality(self, account, event):
        """The number's quality and messaging limit. A flagged number pauses
        the account's sending, with an alert; the flag lifted is alerted,
        sending stays paused until an administrator resumes it."""
        notes = [self._apply_limit(account, event.limit)]
        kind = (event.event or "").upper()
        number = event.display_phone_number or account.name
        if kind == "FLAGGED":
            account.write({"quality_flagged": True, "quality_rating": "red"})
            reason = self.env._(
                "Meta flagged the quality of %(number)s: customers block or "
                "report its messages. Review the templates and the audiences "
                "before resuming; Meta lowers the messaging limit if the "
                "quality does not improve within 7 days.",
                number=number,
            )
            if account.state == "active":
                account._pause(reason)
            else:
                account._alert_managers(reason)
        elif kind == "UNFLAGGED":
            vals = {"quality_flagged": False}
            if account.quality_rating == "red":
                vals["quality_rating"] = "unknown"
            account.write(vals)
            account._alert_managers(
                self.env._(
                    "Meta no longer flags the quality of %(number)s. A paused "
                    "account stays paused until an administrator resumes it.",
                    number=number,
                )
            )
        elif kind and kind not in LIMIT_EVENTS:
            notes.append(
                self.env._(
                    "Meta's phone number event %(event)s is unknown to "
                    "Win-back: kept, only the messaging limit was read.",
                    event=event.event,
                )
            )
        return "\n".join(filter(None, notes))

    @api.model
    def _restriction_text(self, event):
        lines = []
        for restriction in event.restrictions:
            line = restriction.restriction_type or "?"
            if restriction.expiration:
                line = self.env._(
                    "%(restriction)s until %(date)s (UTC)",
                    restriction=line,
                    date=fields.Datetime.to_string(restriction.expiration),
                )
            if restriction.remediation:
                line = f"{line}: {restriction.remediation}"
            lines.append(line)
        return "\n".join(lines) or self.env._("Restricted by Meta")

    @api.model
    def _apply_account_update(self, account, event):
        """Restrictions, bans, deletion and offboarding pause the account's
        sending with an alert; a violation or a reinstatement is alerted;
        Meta's pricing, partner and verification events change nothing."""
        kind = (event.event or "").upper()
        if kind == "ACCOUNT_RESTRICTION":
            text = self._restriction_text(event)
            ends = [r.expiration for r in event.restrictions if r.expiration]
            account.write(
                {"restriction": text, "restricted_until": max(ends) if ends else False}
            )
            blocking = not event.restrictions or any(
                r.restriction_type not in NON_SENDING_RESTRICTIONS
                for r in event.restrictions
            )
            reason = self.env._(
                "Meta restricted the WhatsApp Business Account: %(restriction)s",
                restriction=text,
            )
            self._pause_or_alert(account, reason, pause=blocking)
        elif kind == "ACCOUNT_VIOLATION":
            account._alert_managers(
                self.env._(
                    "Meta reports a policy violation (%(violation)s) on the "
                    "WhatsApp Business Account. Read Meta's notice in WhatsApp "
                    "Manager: repeated violations restrict or disable it.",
                    violation=event.violation_type or "?",
                )
            )
        elif kind == "DISABLED_UPDATE":
            self._apply_ban(account, event)
        elif kind in ("ACCOUNT_DELETED", "ACCOUNT_OFFBOARDED"):
            text = (
                self.env._("Deleted by Meta")
                if kind == "ACCOUNT_DELETED"
                else self.env._(
                    "Offboarded after a device change or a re-registration of "
                    "the phone number"
                )
            )
            account.write({"restriction": text, "restricted_until": False})
            self._pause_or_alert(
                account,
                self.env._(
                    "WhatsApp Business Account: %(restriction)s.", restriction=text
                ),
            )
        elif kind == "ACCOUNT_RECONNECTED":
            account.write({"restriction": False, "restricted_until": False})
            account._alert_managers(
                self.env._(
                    "Meta reconnected the WhatsApp Business Account. A paused "
                    "account stays paused until an administrator resumes it."
                )
            )
        elif kind not in INFORMATIVE_ACCOUNT_EVENTS:
            return self.env._(
                "Meta's account event %(event)s is unknown to Win-back: kept, "
                "the account is unchanged.",
                event=event.event or "?",
            )
        return None

    @api.model
    def _apply_ban(self, account, event):
        state = (event.ban_state or "").upper()
        date = event.ban_date or ""
        if state == "REINSTATE":
            account.write({"restriction": False, "restricted_until": False})
            account._alert_managers(
                self.env._(
                    "Meta reinstated the WhatsApp Business Account. A paused "
                    "account stays paused until an administrator resumes it."
                )
            )
            return
        if state == "SCHEDULE_FOR_DISABLE":
            text = self.env._("Scheduled by Meta to be disabled %(date)s", date=date)
            account.write({"restriction": text.strip()})
            account._alert_managers(
                self.env._(
                    "WhatsApp Business Account: %(restriction)s. Read Meta's "
                    "notice in WhatsApp Manager.",
                    restriction=text.strip(),
                )
            )
            return
        text = self.env._("Disabled by Meta %(date)s", date=date).strip()
        account.write({"restriction": text, "restricted_until": False})
        self._pause_or_alert(
            account,
            self.env._("WhatsApp Business Account: %(restriction)s.", restriction=text),
        )

    @api.model
    def _pause_or_alert(self, account, reason, pause=True):
        """Pause the account's sending with an alert (``_pause``), or only
        alert when it is already paused or when ``pause`` is False."""
        if pause and account.state == "active":
            account._pause(reason)
        else:
            account._alert_managers(reason)
