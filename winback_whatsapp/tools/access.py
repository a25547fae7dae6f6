"""The group check every ``action_*`` of the addon starts with."""

from odoo.exceptions import AccessError


def check_group(env, group):
    """Raise AccessError unless the user is in ``group`` (an XML id).

    Buttons are hidden in the views, but any method whose name does not
    start with an underscore can be called over RPC: the server decides."""
    if env.su or env.user.has_group(group):
        return
    raise AccessError(
        env._(
            "Only the group %(group)s can do this.",
            group=env.ref(group).sudo().full_name,
        )
    )
