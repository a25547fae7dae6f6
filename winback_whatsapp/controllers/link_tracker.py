from werkzeug.exceptions import NotFound

from odoo import http
from odoo.http import request


class WinbackLinkTrackerController(http.Controller):
    """Short links of win-back messages: Odoo's link tracker's ``/r/<code>``
    followed by ``/w/<message id>``, so that the click is counted on the
    campaign (the link's UTM campaign) and shown on the customer's
    enrollment, as SMS mailings do with ``/r/<code>/s/<sms id>``."""

    @http.route(
        "/r/<string:code>/w/<int:message_id>",
        type="http",
        auth="public",
        save_session=False,
    )
    def winback_short_link_redirect(self, code, message_id, **post):
        # Link previews (WhatsApp fetches one) are not clicks.
        if not request.env["ir.http"].is_a_bot():
            request.env["link.tracker.click"].sudo().add_click(
                code,
                ip=request.httprequest.remote_addr,
                country_code=request.geoip.country_code,
                winback_message_id=message_id,
            )
        redirect_url = request.env["link.tracker"].get_url_from_code(code)
        if not redirect_url:
            raise NotFound()
        return request.redirect(redirect_url, code=301, local=False)
