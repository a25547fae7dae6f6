from odoo import api, fields, models


class WinbackBsuidOptout(models.Model):
    """The blacklist of WhatsApp users known by no phone number: their
    business-scoped user ID (BSUID), opted out of marketing messages. Kept
    on the BSUID itself, so that it holds before the customer is linked to
    a contact, and the send cron refuses it as it refuses a blacklisted
    number (``winback.sender._due_query``)."""

    _name = "winback.bsuid.optout"
    _description = "WhatsApp opt-out by user ID"
    _rec_name = "bsuid"
    _order = "id desc"

    bsuid = fields.Char(
        "WhatsApp user ID",
        required=True,
        readonly=True,
        help="The business-scoped user ID WhatsApp gives a customer (for "
        "example IT.1502576394655843), also when it hides their number.",
    )
    active = fields.Boolean(
        default=True,
        readonly=True,
        help="Unset when the customer opted back in (START or resume).",
    )
    opt_out_at = fields.Datetime(
        "Opt-out time",
        readonly=True,
        help="When the customer last asked to stop, by WhatsApp's own clock: "
        "an opt-in sent before it never undoes it.",
    )
    reason = fields.Char(readonly=True)

    _sql_constraints = [
        ("bsuid_uniq", "UNIQUE (bsuid)", "A WhatsApp user ID is listed once."),
    ]

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    @api.model
    def _winback_add(self, bsuids, reason, when=None):
        """Opt these BSUIDs out at ``when`` (default: now), concurrent
        deliveries included (ON CONFLICT). Keeps the latest opt-out time."""
        bsuids = sorted(set(filter(None, bsuids)))
        if not bsuids:
            return self.browse()
        when = when or fields.Datetime.now()
        self.flush_model()
        self.env.cr.execute(
            """
            INSERT INTO winback_bsuid_optout
                   (bsuid, active, opt_out_at, reason,
                    create_uid, create_date, write_uid, write_date)
            SELECT b, true, %(when)s, %(reason)s,
                   %(uid)s, now() at time zone 'UTC', %(uid)s, now() at time zone 'UTC'
              FROM unnest(%(bsuids)s::varchar[]) b
            ON CONFLICT (bsuid) DO UPDATE
               SET active = true, reason = EXCLUDED.reason,
                   opt_out_at = CASE
                       WHEN winback_bsuid_optout.active
                        AND winback_bsuid_optout.opt_out_at > EXCLUDED.opt_out_at
                       THEN winback_bsuid_optout.opt_out_at
                       ELSE EXCLUDED.opt_out_at END,
                   write_uid = EXCLUDED.write_uid, write_date = EXCLUDED.write_date
            RETURNING id
            """,
            {"bsuids": bsuids, "when": when, "reason": reason, "uid": self.env.uid},
        )
        records = self.browse(row[0] for row in self.env.cr.fetchall())
        self.invalidate_model()
        return records

    def _winback_note_opt_out(self, when):
        """Remember the latest opt-out time of these (active) opt-outs."""
        for record in self:
            if not record.opt_out_at or record.opt_out_at < when:
                record.opt_out_at = when

    @api.model
    def _winback_lines(self, bsuids):
        """The opt-outs, active or not, of ``bsuids``."""
        bsuids = sorted(set(filter(None, bsuids)))
        if not bsuids:
            return self.browse()
        return self.with_context(active_test=False).search([("bsuid", "in", bsuids)])

    @api.model
    def _winback_is_opted_out(self, bsuids):
        return bool(self._winback_lines(bsuids).filtered("active"))

    @api.model
    def _winback_remove(self, bsuids, when=None):
        """Opt these BSUIDs back in after an opt-in sent at ``when``, unless
        the customer opted out after it. Returns False when a later opt-out
        stands, else True."""
        records = self._winback_lines(bsuids).filtered("active")
        latest = max(records.mapped("opt_out_at"), default=False)
        if latest and when and latest > when:
            return False
        records.active = False
        return True
