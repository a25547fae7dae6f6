def migrate(cr, version):
    """Buttons get an intent: a button marked STOP keeps opting out (its
    intent is Stop), any other one is a Question, as its taps were."""
    if not version:
        return
    cr.execute(
        """
        ALTER TABLE winback_template_button
        ADD COLUMN IF NOT EXISTS intent varchar
        """
    )
    cr.execute(
        """
        UPDATE winback_template_button
           SET intent = CASE WHEN is_stop THEN 'stop' ELSE 'question' END
         WHERE intent IS NULL
        """
    )
