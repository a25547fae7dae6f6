"""United States numbers: Meta delivers no marketing template message to a
WhatsApp user with a +1 number and a US area code (since April 2025). Such
customers are not enrolled, with their own reason, and a marketing message
queued for one is refused at send time; utility templates still go. Canadian
and Caribbean +1 numbers are not concerned."""

import random

import phonenumbers

from odoo.exceptions import UserError
from odoo.tests import tagged
from odoo.tools import SQL

from odoo.addons.winback_whatsapp.tools.eligibility import INELIGIBLE_REASONS
from odoo.addons.winback_whatsapp.tools.wa_number import (
    US_NUMBER_PATTERN,
    is_us_number,
)

from .test_send_safety import SendSafetyCase


def _nanp_numbers():
    """Numbers of every +1 area code, a few exchanges each (fixed seed)."""
    rng = random.Random(20261202)
    return [
        f"+1{area}{rng.randrange(200, 1000)}{rng.randrange(10000):04d}"
        for area in range(200, 1000)
        for _ in range(3)
    ]


@tagged("post_install", "-at_install")
class TestUsNumbers(SendSafetyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.new_yorker = cls._customer("Dana Smith", "+1 212 555 0123")
        cls.new_yorker.country_id = cls.env.ref("base.us")
        cls.torontonian = cls._customer("Jean Tremblay", "+1 416 555 0188")
        cls.torontonian.country_id = cls.env.ref("base.ca")

    def _direct(self, partner, template):
        """A message queued without an enrollment (as the composer does)."""
        return self.env["winback.message"].create(
            {"direction": "outbound", "partner_id": partner.id,
             "account_id": self.account.id, "company_id": self.company.id,
             "template_id": template.id, "phone_e164": partner.phone_sanitized,
             "state": "queued"}
        )  # fmt: skip

    def test_us_number_is_what_phonenumbers_places_in_the_united_states(self):
        """The pattern, in Python and in PostgreSQL, takes exactly the +1
        numbers phonenumbers gives to the United States."""
        numbers = _nanp_numbers()
        expected = {
            n: phonenumbers.region_code_for_number(phonenumbers.parse(n)) == "US"
            for n in numbers
        }
        self.assertTrue(any(expected.values()))
        self.assertFalse(all(expected.values()))
        self.assertEqual({n: is_us_number(n) for n in numbers}, expected)
        self.env.cr.execute(
            SQL(
                "SELECT n, n ~ %s FROM unnest(%s::varchar[]) n",
                US_NUMBER_PATTERN,
                numbers,
            )
        )
        self.assertEqual(dict(self.env.cr.fetchall()), expected)
        self.assertFalse(is_us_number("+393331234567"))
        self.assertFalse(is_us_number("+14165550188"))  # Toronto
        self.assertFalse(is_us_number("+18765550123"))  # Jamaica
        self.assertFalse(is_us_number(False))

    def test_us_customer_is_not_enrolled_with_its_own_reason(self):
        self.assertIn("us_number", dict(INELIGIBLE_REASONS))
        self.assertEqual(self.new_yorker.phone_sanitized, "+12125550123")
        counts = self.env["winback.enroller"]._eligibility_counts(self.campaign)
        # Roberta (Italy) and Jean (Canada) may enter; Dana (US) may not.
        self.assertEqual(counts, {"eligible": 2, "us_number": 1})
        self.campaign.action_preview()
        self.assertIn(
            "United States number: Meta delivers no marketing message to it",
            self.campaign.preview_html,
        )
        enrollments = self._start_and_queue()
        self.assertEqual(enrollments.partner_id, self.roberta | self.torontonian)
        self._send()
        self.assertEqual(
            sorted(b["to"] for b in self.stub.state.sent()),
            ["+14165550188", "+393331234567"],
        )

    def test_marketing_to_a_us_number_is_refused_at_send_utility_goes(self):
        marketing = self._direct(self.new_yorker, self.last_call)
        canadian = self._direct(self.torontonian, self.last_call)
        utility = self._direct(self.new_yorker, self.welcome)
        self.assertEqual(self._send(), 2)
        self.assertEqual(marketing.state, "cancelled")
        self.assertIn("+12125550123 is a United States number", marketing.error_message)
        self.assertEqual(canadian.state, "sent")
        self.assertEqual(utility.state, "sent")
        self.assertEqual(
            sorted((b["to"], b["template"]["name"]) for b in self.stub.state.sent()),
            [("+12125550123", "order_update"), ("+14165550188", "winback_last_call")],
        )

    def test_enrolled_customer_who_moves_to_a_us_number_is_refused_at_send(self):
        """Eligibility is checked at enrollment; the number the message goes
        to is checked again as it is claimed."""
        self.new_yorker.write({"mobile": "+39 347 222 3333", "phone": False})
        enrollment = self._start_and_queue().filtered(
            lambda e: e.partner_id == self.new_yorker
        )
        message = enrollment.message_ids
        self.assertEqual(message.state, "queued")
        message.phone_e164 = "+12125550123"
        self._send()
        self.assertEqual(message.state, "cancelled")
        self.assertIn("United States", message.error_message)
        self.assertNotIn("+12125550123", [b["to"] for b in self.stub.state.sent()])

    def test_composer_and_test_send_refuse_marketing_to_a_us_number(self):
        with self.assertRaisesRegex(UserError, "United States number"):
            self._composer(self.new_yorker, template_id=self.last_call.id).action_send()
        # A utility template is no marketing.
        self._composer(self.new_yorker, template_id=self.welcome.id).action_send()
        self.campaign.test_partner_id = self.new_yorker
        with self.assertRaisesRegex(UserError, "United States number"):
            self.campaign.action_send_test()
        self._send()
        self.assertEqual(
            [(b["to"], b["template"]["name"]) for b in self.stub.state.sent()],
            [("+12125550123", "order_update")],
        )
