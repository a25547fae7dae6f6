def post_init_hook(env):
    """Default segments for every company, and a first recompute so the tags
    are right from the start."""
    env["res.company"].search([])._winback_create_default_segments()
    env["winback.segment"].search([])._action_recompute()
