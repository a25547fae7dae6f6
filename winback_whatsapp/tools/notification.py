"""The client action a button returns to tell the user it worked."""


def success(message, next_action=None):
    """A green notification with ``message``, then ``next_action`` if any."""
    params = {"type": "success", "message": message}
    if next_action:
        params["next"] = next_action
    return {
        "type": "ir.actions.client",
        "tag": "display_notification",
        "params": params,
    }
