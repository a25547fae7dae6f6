import base64
import hashlib
import logging
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import BaseCase, HttpCase, new_test_user, tagged

from ..models.winback_media import MAX_ATTEMPTS
from ..tools import webhook_simulator as simulator
from ..tools.api_host import allowed_media_url
from ..tools.media import check_content, safe_filename, sha256_matches
from ..tools.webhook_parser import parse_payload
from .cloud_api_stub import PHONE_NUMBER_ID, TOKEN
from .common import post_webhook, run_job, start_cloud_api_stub

SECRET = "media-app-secret"
CUSTOMER = "393331234567"

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 8
OGG = b"OggS\x00\x02" + b"\x01" * 1500
OPUS = b"OggS\x00\x02" + b"OpusHead" + b"\x02" * 900
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00" + b"\x03" * 3000
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n" + b" " * 100
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + b"\x04" * 40


class _CaptureLogs(logging.Handler):
    """Every record of every logger, formatted, while installed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(self.format(record))

    LOGGERS = ("odoo.addons.winback_whatsapp", "urllib3", "requests")

    def __enter__(self):
        # Caught at the root, where every logger's records end up; the
        # client's and the addon's own at every level.
        logging.getLogger().addHandler(self)
        self._levels = {}
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)


@tagged("post_install", "-at_install")
class TestWebhookMedia(HttpCase):
    """Photos, voice notes, videos, documents and stickers a customer sends:
    filed at once with their caption, then downloaded from the Graph API
    (here the local stub) by the media cron into the chatter."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stub = start_cloud_api_stub(cls)
        cls.account = cls.env["winback.account"].create(
            {
                "name": "Media number",
                "provider": "meta",
                "api_base_url": cls.stub.base_url,
                "phone_number_id": PHONE_NUMBER_ID,
                "access_token": TOKEN,
                "app_secret": SECRET,
            }
        )
        cls.seller = new_test_user(
            cls.env,
            login="media_seller",
            groups="base.group_user,base.group_partner_manager,"
            "winback_whatsapp.group_winback_user",
        )
        cls.outsider = new_test_user(cls.env, login="media_outsider")
        cls.partner = cls.env["res.partner"].create(
            {"name": "Mario Rossi", "mobile": "+" + CUSTOMER}
        )
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"

    # helpers ---------------------------------------------------------

    def _post(self, msg_type, content, wamid, sender=CUSTOMER):
        """Meta's signed call announcing one media message, then the
        webhook processing cron."""
        payload = simulator.inbound(
            PHONE_NUMBER_ID,
            sender,
            wamid,
            msg_type,
            content,
            1767225600,
            profile_name="Mario",
        )
        post_webhook(self, self.url, payload, SECRET)
        return self.env["winback.message"].search([("wamid", "=", wamid)])

    def _download(self):
        run_job(self, "winback.media", "_cron_download")

    def _media(self, message):
        return self.env["winback.media"].search([("message_id", "=", message.id)])

    def _chatter(self, text, partner=None):
        return (partner or self.partner).message_ids.filtered(
            lambda m: text in (m.body or "")
        )

    def _make_due(self, media):
        # Before the test's transaction began, which is "now" for SQL.
        media.sudo().next_attempt_at = fields.Datetime.now() - timedelta(days=1)

    def _media_cron_triggered(self):
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_media_download")
        return self.env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])

    # tests -----------------------------------------------------------

    def test_each_media_type_lands_in_the_chatter(self):
        cases = [
            # type, content, bytes, mimetype, caption, attachment name
            (
                "image",
                {"caption": "Is this in stock?", "mime_type": "image/jpeg"},
                JPEG,
                "image/jpeg",
                "Is this in stock?",
                "whatsapp-image-2026-01-01-000000.jpg",
            ),
            ("audio", {"mime_type": "audio/ogg"}, OGG, "audio/ogg", "[audio]", None),
            (
                "audio",
                {"mime_type": "audio/ogg; codecs=opus", "voice": True},
                OPUS,
                "audio/ogg",
                "[voice]",
                "whatsapp-voice-2026-01-01-000000.ogg",
            ),
            (
                "video",
                {"caption": "Unboxing", "mime_type": "video/mp4"},
                MP4,
                "video/mp4",
                "Unboxing",
                None,
            ),
            (
                "document",
                {
                    "caption": "my receipt",
                    "filename": "../../etc/Receipt <March>.pdf",
                    "mime_type": "application/pdf",
                },
                PDF,
                "application/pdf",
                "my receipt",
                "Receipt _March_.pdf",
            ),
            (
                "sticker",
                {"mime_type": "image/webp", "animated": False},
                WEBP,
                "image/webp",
                "[sticker]",
                None,
            ),
        ]
        for index, (mtype, content, data, mimetype, caption, name) in enumerate(cases):
            with self.subTest(mtype=mtype, index=index):
                media_id = f"77000{index}"
                self.stub.state.add_media(media_id, data, content["mime_type"])
                downloads = len(self.stub.state.media_downloads)
                message = self._post(
                    mtype, {**content, "id": media_id}, f"wamid.MEDIA{index}"
                )
                # Filed at once, caption and all, before any download.
                self.assertEqual(len(self.stub.state.media_downloads), downloads)
                self.assertTrue(self._media_cron_triggered())
                chatter = self._media(message).chatter_message_id
                self.assertEqual(chatter.model, "res.partner")
                self.assertEqual(chatter.res_id, self.partner.id)
                self.assertIn(caption, chatter.body)
                self.assertIn("Media being downloaded", chatter.body)
                self.assertFalse(chatter.attachment_ids)

                self._download()
                self.assertEqual(len(self.stub.state.media_downloads), downloads + 1)
                self.assertEqual(
                    self.stub.state.media_downloads[-1][1], f"Bearer {TOKEN}"
                )
                attachment = chatter.attachment_ids
                self.assertEqual(len(attachment), 1)
                self.assertEqual(attachment.raw, data)
                self.assertEqual(attachment.mimetype, mimetype)
                if name:
                    self.assertEqual(attachment.name, name)
                self.assertEqual(
                    (attachment.res_model, attachment.res_id),
                    ("res.partner", self.partner.id),
                )
                self.assertIn(caption, chatter.body)
                self.assertNotIn("Media", chatter.body)
                self.assertEqual(self._media(message).state, "done")
                self.assertIn(caption, message.body)
        # Whoever reads the customer reads the files.
        files = self.partner.message_ids.attachment_ids
        self.assertEqual(len(files), len(cases))
        self.assertEqual(
            len(files.with_user(self.seller).read(["name", "raw"])), len(cases)
        )

    def test_failed_download_is_noted_and_retried(self):
        self.stub.state.add_media("880001", JPEG, "image/jpeg")
        message = self._post(
            "image",
            {"caption": "Look at this", "mime_type": "image/jpeg", "id": "880001"},
            "wamid.RETRY1",
        )
        media = self._media(message)
        (chatter,) = self._chatter("Look at this")
        self.stub.state.fail_next(code=131000, status=500, message="Something went")
        self._download()
        self.assertEqual(media.state, "pending")
        self.assertEqual(media.attempts, 1)
        self.assertGreater(media.next_attempt_at, fields.Datetime.now())
        self.assertIn("Media unavailable for now", chatter.body)
        self.assertIn("Look at this", chatter.body)
        self.assertFalse(chatter.attachment_ids)
        # Not due yet: the next run leaves it alone.
        downloads = len(self.stub.state.media_downloads)
        self._download()
        self.assertEqual(media.attempts, 1)
        self.assertEqual(len(self.stub.state.media_downloads), downloads)
        # Due again: it comes.
        self._make_due(media)
        self._download()
        self.assertEqual(media.state, "done")
        self.assertEqual(chatter.attachment_ids.raw, JPEG)
        self.assertNotIn("unavailable", chatter.body)
        self.assertIn("Look at this", chatter.body)

    def test_download_given_up_after_the_last_attempt(self):
        message = self._post(
            "image",
            {"caption": "Lost photo", "mime_type": "image/jpeg", "id": "880404"},
            "wamid.GONE1",
        )
        media = self._media(message)
        (chatter,) = self._chatter("Lost photo")
        for _attempt in range(MAX_ATTEMPTS):
            self._make_due(media)
            self._download()
        # The stub knows no media 880404: Meta's "Unknown path" every time.
        self.assertEqual(media.state, "unavailable")
        self.assertEqual(media.attempts, MAX_ATTEMPTS)
        self.assertIn("Media unavailable: ", chatter.body)
        self.assertNotIn("trying again", chatter.body)
        self.assertIn("Lost photo", chatter.body)
        self._make_due(media)
        self._download()
        self.assertEqual(media.attempts, MAX_ATTEMPTS)

    def test_oversized_media_refused_with_a_note_text_kept(self):
        self.env["ir.config_parameter"].set_param(
            "winback_whatsapp.media_max_mb", "0.001"
        )
        big = JPEG + b"\x00" * 2048
        self.stub.state.add_media("990001", big, "image/jpeg")
        # Its metadata says small: the download itself stops at the cap.
        self.stub.state.add_media("990002", big, "image/jpeg", file_size="100")
        for media_id, wamid in (("990001", "wamid.BIG1"), ("990002", "wamid.BIG2")):
            with self.subTest(media_id=media_id):
                message = self._post(
                    "image",
                    {
                        "caption": f"Big {wamid}",
                        "mime_type": "image/jpeg",
                        "id": media_id,
                    },
                    wamid,
                )
                self._download()
                media = self._media(message)
                (chatter,) = self._chatter(f"Big {wamid}")
                self.assertEqual(media.state, "unavailable")
                self.assertEqual(media.attempts, 1, "refused for good, not retried")
                self.assertIn("Media unavailable: The file is larger", chatter.body)
                self.assertIn("MB allowed", chatter.body)
                self.assertFalse(chatter.attachment_ids)
                self.assertFalse(
                    self.env["ir.attachment"].search(
                        [
                            ("res_model", "=", "res.partner"),
                            ("res_id", "=", self.partner.id),
                        ]
                    )
                )
        # Documents have their own, larger cap.
        self.stub.state.add_media("990003", PDF, "application/pdf")
        message = self._post(
            "document",
            {"filename": "a.pdf", "mime_type": "application/pdf", "id": "990003"},
            "wamid.DOC1",
        )
        self._download()
        self.assertEqual(self._media(message).state, "done")

    def test_type_mismatch_refused_with_a_note_text_kept(self):
        page = b"<html><body><script>alert(document.cookie)</script></body></html>"
        self.stub.state.add_media("660001", page, "image/jpeg")
        self.stub.state.add_media("660002", page, "text/html")
        self.stub.state.add_media(
            "660003", JPEG, "image/jpeg", content_type="text/html"
        )
        cases = [
            ("image", "image/jpeg", "660001", "wamid.MIME1"),  # bytes are HTML
            ("document", "text/html", "660002", "wamid.MIME2"),  # type not allowed
            ("image", "image/jpeg", "660003", "wamid.MIME3"),  # served as HTML
        ]
        for mtype, mime, media_id, wamid in cases:
            with self.subTest(wamid=wamid):
                downloads = len(self.stub.state.media_downloads)
                message = self._post(
                    mtype,
                    {"caption": f"See {wamid}", "mime_type": mime, "id": media_id},
                    wamid,
                )
                self._download()
                media = self._media(message)
                (chatter,) = self._chatter(f"See {wamid}")
                self.assertEqual(media.state, "unavailable")
                self.assertEqual(media.attempts, 1)
                self.assertIn("is not a type WhatsApp sends as", chatter.body)
                self.assertNotIn("<script", chatter.body)
                self.assertFalse(chatter.attachment_ids)
                if mime == "text/html":
                    # Refused on the webhook's word: nothing downloaded.
                    self.assertEqual(len(self.stub.state.media_downloads), downloads)
        self.assertFalse(
            self.env["ir.attachment"].search(
                [("res_model", "=", "res.partner"), ("res_id", "=", self.partner.id)]
            )
        )

    def test_token_sent_as_bearer_only_to_the_api_host_and_never_logged(self):
        self.stub.state.add_media("550001", JPEG, "image/jpeg")
        # A media URL elsewhere: the token does not go there.
        self.stub.state.add_media(
            "550002", JPEG, "image/jpeg", url="http://127.0.0.1:9/steal?x=1"
        )
        before = len(self.stub.state.media_downloads)
        with _CaptureLogs() as logs:
            first = self._post(
                "image", {"mime_type": "image/jpeg", "id": "550001"}, "wamid.TOK1"
            )
            other = self._post(
                "image", {"mime_type": "image/jpeg", "id": "550002"}, "wamid.TOK2"
            )
            self.stub.state.fail_next(code=190, status=401, message="Token expired")
            self._download()  # first fails (token refused), other is refused
            self._make_due(self._media(first))
            self._download()
        self.assertEqual(self._media(first).state, "done")
        self.assertEqual(self._media(other).state, "unavailable")
        self.assertIn("not on Meta's media host", self._media(other).error)
        self.assertEqual(
            [auth for _path, auth in self.stub.state.media_downloads[before:]],
            [f"Bearer {TOKEN}"],
        )
        self.assertTrue(logs.lines)
        self.assertFalse([line for line in logs.lines if TOKEN in line])
        for media in self._media(first) | self._media(other):
            self.assertNotIn(TOKEN, media.error or "")
        self.assertFalse(self._chatter(TOKEN))

    def test_unmatched_reply_keeps_its_file_and_the_file_follows_the_link(self):
        self.stub.state.add_media("440001", PDF, "application/pdf")
        self.stub.state.add_media("440002", JPEG, "image/jpeg")
        stranger = "447700900123"
        early = self._post(
            "document",
            {"filename": "order.pdf", "mime_type": "application/pdf", "id": "440001"},
            "wamid.UNM1",
            sender=stranger,
        )
        late = self._post(
            "image",
            {"caption": "and this", "mime_type": "image/jpeg", "id": "440002"},
            "wamid.UNM2",
            sender=stranger,
        )
        self.assertFalse(early.partner_id)
        # Only the first is downloaded before the link.
        run_job(self, "winback.media", "_cron_download", batch_size=1)
        attachment = self._media(early).attachment_id
        self.assertEqual(
            (attachment.res_model, attachment.res_id), ("winback.message", early.id)
        )
        self.assertEqual(attachment.name, "order.pdf")
        # Readable by who reads unmatched replies, not by other users.
        self.assertEqual(attachment.with_user(self.seller).raw, PDF)
        with self.assertRaises(AccessError):
            attachment.with_user(self.outsider).read(["raw"])

        early.with_user(self.seller).action_create_partner()
        customer = early.partner_id
        self.assertTrue(customer)
        (posted,) = self._chatter("order.pdf", customer)
        self.assertEqual(posted.attachment_ids, attachment)
        self.assertEqual(
            (attachment.res_model, attachment.res_id), ("res.partner", customer.id)
        )
        self.assertNotIn("Media", posted.body)

        late.partner_id = customer
        late.with_user(self.seller).action_link_partner()
        (posted_late,) = self._chatter("and this", customer)
        self.assertIn("Media being downloaded", posted_late.body)
        self._download()
        self.assertEqual(posted_late.attachment_ids.raw, JPEG)
        self.assertEqual(posted_late.attachment_ids.res_model, "res.partner")
        self.assertNotIn("Media", posted_late.body)

    def test_checksum_mismatch_is_retried_not_kept(self):
        self.stub.state.add_media("220001", JPEG, "image/jpeg")
        wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
        message = self._post(
            "image",
            simulator.media("220001", "image/jpeg", sha256=wrong, caption="Sum"),
            "wamid.SUM1",
        )
        self._download()
        media = self._media(message)
        self.assertEqual((media.state, media.attempts), ("pending", 1))
        self.assertIn("does not match its checksum", media.chatter_message_id.body)
        self.assertIn("trying again", media.chatter_message_id.body)
        self.assertFalse(media.attachment_id)

    def test_unmatched_reply_file_goes_with_the_reply(self):
        self.stub.state.add_media("330001", JPEG, "image/jpeg")
        reply = self._post(
            "image",
            simulator.media(
                "330001",
                "image/jpeg",
                sha256=base64.b64encode(hashlib.sha256(JPEG).digest()).decode(),
            ),
            "wamid.GC1",
            sender="447700900999",
        )
        self._download()
        attachment = self._media(reply).attachment_id
        self.assertTrue(attachment)
        # Past its personal-data lifetime, the unmatched reply is deleted...
        self.env["ir.config_parameter"].set_param(
            "winback_whatsapp.message_retention_days", "1"
        )
        self.env.cr.execute(
            "UPDATE winback_message SET create_date = now() - interval '2 days'"
            " WHERE id = %s",
            [reply.id],
        )
        self.env["winback.message"]._gc_personal_data()
        self.assertFalse(reply.exists())
        # ... and its file with it.
        self.env["winback.media"]._gc_unmatched_files()
        self.assertFalse(attachment.exists())


@tagged("post_install", "-at_install")
class TestMediaTools(BaseCase):
    """The pure parts: the webhook's media fields, the type and size rules,
    file names, where the token may go."""

    def _parse(self, msg_type, content):
        payload = simulator.inbound(
            PHONE_NUMBER_ID, CUSTOMER, "wamid.P", msg_type, content, 1
        )
        return parse_payload(payload)[0].messages[0]

    def test_parser_keeps_the_media_fields(self):
        voice = self._parse(
            "audio",
            {
                "mime_type": "audio/ogg; codecs=opus",
                "sha256": "abc=",
                "id": "12",
                "voice": True,
            },
        )
        self.assertEqual(
            (
                voice.media_id,
                voice.mime_type,
                voice.sha256,
                voice.voice,
                voice.media_kind,
            ),
            ("12", "audio/ogg; codecs=opus", "abc=", True, "voice"),
        )
        self.assertEqual(voice.text, "[voice]")
        document = self._parse(
            "document",
            {
                "caption": "my receipt",
                "filename": "r.pdf",
                "mime_type": "application/pdf",
                "id": "13",
            },
        )
        self.assertEqual(
            (document.filename, document.caption, document.media_kind, document.voice),
            ("r.pdf", "my receipt", "document", False),
        )
        self.assertEqual(document.text, "[r.pdf] my receipt")
        self.assertIsNone(self._parse("text", {"body": "hi"}).media_kind)
        # No media id: nothing to download.
        self.assertIsNone(self._parse("image", {"mime_type": "image/jpeg"}).media_kind)

    def test_types_agree_with_the_bytes(self):
        self.assertEqual(check_content("image", JPEG, "image/jpeg"), "image/jpeg")
        png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
        self.assertEqual(check_content("image", png, "image/jpeg"), "image/png")
        self.assertEqual(
            check_content("voice", OPUS, "audio/ogg; codecs=opus", "audio/ogg"),
            "audio/ogg",
        )
        self.assertEqual(check_content("video", MP4, "video/mp4"), "video/mp4")
        self.assertEqual(check_content("sticker", WEBP, "image/webp"), "image/webp")
        self.assertEqual(
            check_content(
                "document", PDF, "application/pdf", "application/octet-stream"
            ),
            "application/pdf",
        )
        self.assertEqual(
            check_content("document", b"plain words", "text/plain"), "text/plain"
        )
        html = b"<html><script>alert(1)</script></html>"
        svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>'
        for kind, data, *declared in (
            ("image", html, "image/jpeg"),  # HTML sent as a photo
            ("document", svg, "text/plain"),  # SVG sent as text
            ("document", html, "text/html"),  # a type WhatsApp does not send
            ("image", JPEG, "image/webp"),  # a sticker's type for a photo
            ("image", PDF, "image/jpeg"),
            ("audio", MP4, "audio/ogg"),  # an MP4 declared OGG
            ("video", b"\x00" * 64, "video/mp4"),  # no signature at all
            ("document", PDF, "application/pdf", "image/jpeg"),  # two stories
            ("image", JPEG),  # nothing declared
        ):
            with self.subTest(kind=kind, declared=declared):
                self.assertIsNone(check_content(kind, data, *declared))

    def test_checksums_in_base64_or_hex(self):
        digest = hashlib.sha256(PDF)
        self.assertTrue(sha256_matches(PDF, base64.b64encode(digest.digest()).decode()))
        self.assertTrue(sha256_matches(PDF, digest.hexdigest().upper()))
        self.assertTrue(sha256_matches(PDF, ""))
        self.assertFalse(sha256_matches(PDF, base64.b64encode(b"x" * 32).decode()))
        self.assertFalse(sha256_matches(PDF, "not base64!"))

    def test_file_names_are_made_safe(self):
        pdf = "application/pdf"
        self.assertEqual(safe_filename("..\\..\\boot.ini", pdf, "f"), "boot.ini.pdf")
        self.assertEqual(safe_filename("/etc/passwd", pdf, "f"), "passwd.pdf")
        self.assertEqual(safe_filename("a\x00b\nc.pdf", pdf, "f"), "a_b_c.pdf")
        self.assertEqual(safe_filename("invoice.exe", pdf, "f"), "invoice.exe.pdf")
        self.assertEqual(
            safe_filename("", "image/jpeg", "whatsapp-image"), "whatsapp-image.jpg"
        )
        self.assertEqual(safe_filename("...", pdf, "doc"), "doc.pdf")
        self.assertEqual(safe_filename("Photo.JPEG", "image/jpeg", "f"), "Photo.JPEG")
        self.assertEqual(safe_filename("x", "application/x-unknown", "f"), "x.bin")
        long_name = safe_filename("é" * 300 + ".pdf", pdf, "f")
        self.assertLessEqual(len(long_name), 120)
        self.assertTrue(long_name.endswith("é.pdf"))

    def test_media_urls_the_token_may_go_to(self):
        base = "http://127.0.0.1:8765"
        meta = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2"
        self.assertTrue(allowed_media_url(meta, "https://graph.facebook.com"))
        self.assertTrue(allowed_media_url(base + "/media/1?ext=1", base))
        for url in (
            "http://lookaside.fbsbx.com/x",  # not HTTPS
            "https://lookaside.fbsbx.com:8443/x",
            "https://evil.example/x",
            "http://127.0.0.1:9/media/1",  # another port
            "https://127.0.0.1:8765/media/1",  # another scheme
            "https://user@lookaside.fbsbx.com/x",
            "https://lookaside.fbsbx.com\\@evil.example/x",
            "",
        ):
            with self.subTest(url=url):
                self.assertFalse(allowed_media_url(url, base))
