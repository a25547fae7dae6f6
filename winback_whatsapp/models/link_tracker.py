from odoo import api, models
from odoo.tools import SQL

from ..tools.links import find_urls, replace_urls


class LinkTracker(models.Model):
    _inherit = "link.tracker"

    @api.model
    def _winback_shortener(self, campaign, message, cache):
        """A function that replaces the links of a text of ``message`` by
        short links of Odoo's link tracker carrying the UTM values of the
        win-back ``campaign``, followed by ``/w/<message id>`` so that a
        click is counted on the campaign and shown on the customer's
        enrollment (``/r/<code>/w/<id>``).

        One tracker per (campaign, link), found or created once per send run:
        ``cache`` (``{(utm campaign id, url): short url}``) lives as long as
        the run, as the campaign's UTM values (``{campaign: values}``)."""

        def shorten(text):
            urls = find_urls([text])
            if not urls:
                return text
            if campaign not in cache:
                cache[campaign] = campaign._utm_values()
            short = self._winback_short_urls(urls, cache[campaign], cache)
            return replace_urls(
                text, {url: f"{short[url]}/w/{message.id}" for url in urls}
            )

        return shorten

    @api.model
    def _winback_short_urls(self, urls, utm_values, cache):
        """``{url: short url}`` of the trackers of ``urls`` with
        ``utm_values``, from ``cache`` or found or created (and cached)."""
        campaign_id = utm_values["campaign_id"]
        missing = [url for url in urls if (campaign_id, url) not in cache]
        if missing:
            # Two send workers never create the same tracker twice: the
            # second waits for the first's commit, then finds it.
            self.env.cr.execute(
                SQL(
                    "SELECT pg_advisory_xact_lock(hashtext(%s), %s)",
                    "winback_link_tracker",
                    campaign_id,
                )
            )
            # The title is the link itself: no fetch of the page while
            # messages are being sent.
            trackers = (
                self.sudo()
                .with_context(tracking_disable=True)
                .search_or_create(
                    [dict(utm_values, url=url, title=url) for url in missing]
                )
            )
            for url, tracker in zip(missing, trackers, strict=True):
                cache[campaign_id, url] = tracker.short_url
        return {url: cache[campaign_id, url] for url in urls}
