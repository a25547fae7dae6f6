from odoo import api, fields, models

from ..tools.wa_number import number_variants


class PhoneBlacklist(models.Model):
    _inherit = "phone.blacklist"

    winback_opt_out_at = fields.Datetime(
        "WhatsApp opt-out time",
        readonly=True,
        copy=False,
        help="When the customer last asked to stop, by WhatsApp's own clock: "
        "an opt-in sent before it (replayed, retried or processed late) never "
        "undoes it.",
    )

    def write(self, vals):
        # Blacklisted or freed again by anyone: the WhatsApp time no longer
        # describes this state (the write date does, see _winback_opted_out_at).
        if "active" in vals and "winback_opt_out_at" not in vals:
            vals = dict(vals, winback_opt_out_at=False)
        return super().write(vals)

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    @api.model
    def _winback_add(self, numbers, reason, when=None):
        """Blacklist ``numbers`` (E.164) and the other writings of the same
        lines, whatever phonenumbers thinks of them: a number it rejects is
        kept under its raw ``+digits`` form, which is the form the send path
        looks up. ``when`` is the opt-out's own time (default: now)."""
        when = when or fields.Datetime.now()
        valid, raw = set(), set()
        for number in filter(None, numbers):
            formatted = self.env.user._phone_format(number=number)
            if formatted:
                valid.add(formatted)
            else:
                raw.add(number)
            for variant in number_variants(number):
                formatted = self.env.user._phone_format(number=variant)
                if formatted:
                    valid.add(formatted)
        records = self.browse()
        if valid:
            records |= self._add(sorted(valid), message=reason)
        for number in sorted(raw):
            records |= self._winback_add_raw(number, reason)
        records._winback_note_opt_out(when)
        return records

    @api.model
    def _winback_add_raw(self, number, reason):
        """Blacklist a number phonenumbers rejects, as it is: phone.blacklist's
        create() would refuse it, and a lost opt-out is worse than an odd
        entry in the list."""
        self.flush_model()
        self.env.cr.execute(
            """
            INSERT INTO phone_blacklist
                   (number, active, create_uid, create_date, write_uid, write_date)
            VALUES (%(number)s, true, %(uid)s, now() at time zone 'UTC',
                    %(uid)s, now() at time zone 'UTC')
            ON CONFLICT (number) DO UPDATE
               SET active = true, winback_opt_out_at = CASE
                       WHEN phone_blacklist.active
                       THEN phone_blacklist.winback_opt_out_at END,
                   write_uid = %(uid)s, write_date = now() at time zone 'UTC'
            RETURNING id
            """,
            {"number": number, "uid": self.env.uid},
        )
        record = self.browse(self.env.cr.fetchone()[0])
        self.invalidate_model(["active", "winback_opt_out_at"])
        record.with_context(mail_create_nosubscribe=True).message_post(
            body=reason, subtype_xmlid="mail.mt_note"
        )
        return record

    def _winback_note_opt_out(self, when):
        """Remember the latest opt-out time of these (blacklisted) numbers."""
        for record in self:
            if not record.winback_opt_out_at or record.winback_opt_out_at < when:
                record.winback_opt_out_at = when

    @api.model
    def _winback_lines(self, numbers):
        """The blacklist entries, active or not, of ``numbers`` and of the
        other writings of the same lines."""
        candidates = set(filter(None, numbers))
        for number in list(candidates):
            candidates.update(number_variants(number))
        if not candidates:
            return self.browse()
        return self.with_context(active_test=False).search(
            [("number", "in", sorted(candidates))]
        )

    def _winback_opted_out_at(self):
        """Time of the latest opt-out among these entries: WhatsApp's time
        when an opt-out recorded it, else when the entry was last
        (re)activated."""
        times = [
            record.winback_opt_out_at or record.write_date
            for record in self
            if record.active
        ]
        return max(times) if times else False

    @api.model
    def _winback_remove(self, numbers, reason, when=None):
        """Free ``numbers`` (and the same lines written otherwise) after an
        opt-in sent at ``when``, unless the customer opted out after it.
        Returns False when a later opt-out stands, else True."""
        records = self._winback_lines(numbers).filtered("active")
        latest = records._winback_opted_out_at()
        if latest and when and latest > when:
            return False
        if records:
            records._track_set_log_message(reason)
            records.action_archive()
        return True
