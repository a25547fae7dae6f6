import logging
from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.mail.tools.discuss import Store

from ..tools.media import MEDIA_KINDS, safe_filename
from ..tools.whatsapp_api import MEDIA_REFUSED, WhatsAppError

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
DOWNLOAD_BATCH = 50  # media per cron run; ir.cron runs it again while more wait
DOWNLOAD_CHUNK = 5  # media per commit
MEDIA_MAX_MB = 16  # winback_whatsapp.media_max_mb
DOCUMENT_MAX_MB = 100  # winback_whatsapp.media_document_max_mb
# Refused for good: downloading again cannot change the answer.
NOT_RETRIED = frozenset({MEDIA_REFUSED, "131052"})


class WinbackMedia(models.Model):
    """The file of an inbound media message (photo, voice note, document...).

    The message itself is filed at once, with its caption and a note saying
    the file is being downloaded; the download cron (``_cron_download``)
    then fetches the file from the Graph API, keeps it as an attachment of
    the chatter message (or of the unmatched reply) and removes the note. A
    failed download is retried with backoff; the note says the media is
    unavailable, and why, until it succeeds or is given up."""

    _name = "winback.media"
    _description = "WhatsApp inbound media"
    _order = "id desc"
    _rec_name = "filename"

    message_id = fields.Many2one(
        "winback.message", required=True, index=True, ondelete="cascade"
    )
    account_id = fields.Many2one(
        "winback.account", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one("res.company", index=True)
    kind = fields.Selection(
        [(kind, kind.capitalize()) for kind in MEDIA_KINDS],
        required=True,
        help="Voice: an audio message recorded in WhatsApp.",
    )
    media_ref = fields.Char(
        "WhatsApp media ID",
        required=True,
        help="Meta's id of the file, valid for 7 days after the message.",
    )
    mime_type = fields.Char("Declared type", help="The type the webhook announced.")
    sha256 = fields.Char(help="The file's checksum, as the webhook gave it.")
    filename = fields.Char(help="The document's file name, as the customer sent it.")
    state = fields.Selection(
        [
            ("pending", "Being downloaded"),
            ("done", "Downloaded"),
            ("unavailable", "Unavailable"),
        ],
        default="pending",
        required=True,
        index=True,
        help="Unavailable: refused (too large, a type WhatsApp does not "
        "send) or still failing after several attempts.",
    )
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True, index=True)
    error = fields.Text(readonly=True, help="Why the last download failed.")
    chatter_message_id = fields.Many2one(
        "mail.message",
        "Chatter message",
        ondelete="set null",
        help="The customer's message in the partner's chatter, which gets " "the file.",
    )
    attachment_id = fields.Many2one("ir.attachment", ondelete="set null")
    attachment_name = fields.Char(related="attachment_id.name", string="File name")
    attachment_data = fields.Binary(related="attachment_id.datas", string="File")

    _sql_constraints = [
        ("message_uniq", "unique(message_id)", "One file per WhatsApp message."),
    ]

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    @api.model
    def _create_for(self, message, event):
        """The pending download of an inbound ``message``'s file, if the
        webhook ``event`` carries one; wakes the download cron."""
        kind = event.media_kind
        if not kind:
            return self.browse()
        media = self.create(
            {
                "message_id": message.id,
                "account_id": message.account_id.id,
                "company_id": message.company_id.id,
                "kind": kind,
                "media_ref": event.media_id,
                "mime_type": event.mime_type or False,
                "sha256": event.sha256 or False,
                "filename": event.filename or False,
            }
        )
        self._wake_download_cron()
        return media

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    @api.model
    def _wake_download_cron(self):
        """Trigger the download cron, unless a trigger is already due (it
        takes every due file when it runs)."""
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_media_download").sudo()
        now = self.env.cr.now()
        if (
            self.env["ir.cron.trigger"]
            .sudo()
            .search_count([("cron_id", "=", cron.id), ("call_at", "<=", now)], limit=1)
        ):
            return
        cron._trigger(at=now)

    def _note(self):
        """What the chatter says about the file, or '' once it is there."""
        self.ensure_one()
        if self.state == "done":
            return ""
        if self.state == "unavailable":
            return self.env._("Media unavailable: %s", self.error or "-")
        if self.attempts:
            return self.env._(
                "Media unavailable for now (%s): trying again later.", self.error
            )
        return self.env._("Media being downloaded…")

    def _note_html(self):
        note = self._note()
        return Markup('<p class="text-muted"><i>%s</i></p>') % note if note else ""

    def _link_chatter(self, chatter_message):
        """The customer's message was posted in a chatter: the file goes
        there, now if it is downloaded, else when it is."""
        self.ensure_one()
        self.chatter_message_id = chatter_message
        if self.attachment_id:
            self.attachment_id.sudo().write(
                {"res_model": chatter_message.model, "res_id": chatter_message.res_id}
            )
            chatter_message.sudo().attachment_ids = [(4, self.attachment_id.id)]

    def _refresh_chatter(self):
        """The chatter message shows the file, or the note of its state."""
        self.ensure_one()
        chatter = self.chatter_message_id.sudo()
        if not chatter:
            return
        values = {
            "body": self.env["winback.inbound"]._chatter_body(self.message_id, self)
        }
        if self.attachment_id:
            values["attachment_ids"] = [(4, self.attachment_id.id)]
        chatter.write(values)
        # An open chatter shows the file (or the note) without a reload.
        chatter._bus_send_store(
            chatter,
            {
                "attachment_ids": Store.many(chatter.attachment_ids.sorted("id")),
                "body": chatter.body,
                "write_date": chatter.write_date,
            },
        )

    def _max_bytes(self):
        self.ensure_one()
        key, default = "winback_whatsapp.media_max_mb", MEDIA_MAX_MB
        if self.kind == "document":
            key, default = "winback_whatsapp.media_document_max_mb", DOCUMENT_MAX_MB
        value = self.env["ir.config_parameter"].sudo().get_param(key, default)
        try:
            megabytes = float(value)
        except (TypeError, ValueError):
            megabytes = default
        return int((megabytes if megabytes > 0 else default) * 1024 * 1024)

    def _download(self):
        """Download the file and keep it; on failure, note why and retry
        later with backoff (``MAX_ATTEMPTS`` in all), unless refused."""
        self.ensure_one()
        try:
            api = self.account_id._get_api()
            data, mimetype = api.download_media(
                self.media_ref,
                self.kind,
                self._max_bytes(),
                mime_type=self.mime_type or "",
                sha256=self.sha256 or "",
            )
        except WhatsAppError as error:
            self._failed(error.code, error.text)
            return False
        except Exception as error:  # noqa: BLE001 - noted, retried
            _logger.warning(
                "WhatsApp media %s: download failed: %s", self.id, type(error).__name__
            )
            self._failed("error", str(error) or type(error).__name__)
            return False
        self._keep(data, mimetype)
        return True

    def _keep(self, data, mimetype):
        self.ensure_one()
        chatter = self.chatter_message_id.sudo()
        message = self.message_id
        fallback = "whatsapp-{}-{}".format(
            self.kind,
            fields.Datetime.to_string(message.received_at or fields.Datetime.now())
            .replace(" ", "-")
            .replace(":", ""),
        )
        attachment = (
            self.env["ir.attachment"]
            .sudo()
            .create(
                {
                    "name": safe_filename(self.filename, mimetype, fallback),
                    "raw": data,
                    "mimetype": mimetype,
                    "res_model": chatter.model if chatter else "winback.message",
                    "res_id": chatter.res_id if chatter else message.id,
                    "company_id": self.company_id.id,
                }
            )
        )
        self.write(
            {
                "state": "done",
                "attachment_id": attachment.id,
                "error": False,
                "attempts": self.attempts + 1,
                "next_attempt_at": False,
            }
        )
        self._refresh_chatter()

    def _failed(self, code, text):
        self.ensure_one()
        attempts = self.attempts + 1
        final = code in NOT_RETRIED or attempts >= MAX_ATTEMPTS
        _logger.info(
            "WhatsApp media %s: download %s failed (%s)%s",
            self.id,
            attempts,
            code,
            "" if not final else ", given up",
        )
        self.write(
            {
                "state": "unavailable" if final else "pending",
                "attempts": attempts,
                "error": text,
                # Backoff: 1, 4, 16, 64 minutes.
                "next_attempt_at": False
                if final
                else fields.Datetime.now() + timedelta(minutes=4 ** (attempts - 1)),
            }
        )
        self._refresh_chatter()

    @api.autovacuum
    def _gc_unmatched_files(self):
        """The files of unmatched replies go with them (their personal-data
        lifetime, see ``winback.message._gc_personal_data``)."""
        self.env["ir.attachment"].flush_model()
        self.env.cr.execute(
            """
            SELECT a.id FROM ir_attachment a
             WHERE a.res_model = 'winback.message'
               AND NOT EXISTS (SELECT 1 FROM winback_message m WHERE m.id = a.res_id)
            """
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        self.env["ir.attachment"].sudo().browse(ids).unlink()

    @api.model
    def _due_condition(self):
        return SQL(
            """
            state = 'pending'
            AND (next_attempt_at IS NULL
                 OR next_attempt_at <= (now() at time zone 'UTC'))
            """
        )

    @api.model
    def _claim(self, ids):
        """Those of ``ids`` still due, locked for this transaction; a row
        another worker holds is skipped."""
        self.env.cr.execute(
            SQL(
                """
                SELECT id FROM winback_media
                 WHERE id IN %s AND %s
                   FOR UPDATE SKIP LOCKED
                """,
                tuple(ids),
                self._due_condition(),
            )
        )
        return self.browse(row[0] for row in self.env.cr.fetchall())

    @api.model
    def _cron_download(self, batch_size=DOWNLOAD_BATCH):
        """Download the due files, claimed with row locks so two workers
        never fetch the same file, committing after each chunk; reports its
        progress, so ir.cron runs it again at once while more are due."""
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT id FROM winback_media
                 WHERE %s
                 ORDER BY id
                 LIMIT %s
                   FOR UPDATE SKIP LOCKED
                """,
                self._due_condition(),
                batch_size,
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        done = 0
        for index in range(0, len(ids), DOWNLOAD_CHUNK):
            for media in self._claim(ids[index : index + DOWNLOAD_CHUNK]):
                media._download()
                done += 1
            self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env.cr.execute(
            SQL("SELECT count(*) FROM winback_media WHERE %s", self._due_condition())
        )
        remaining = self.env.cr.fetchone()[0]
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        return True
