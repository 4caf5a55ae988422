"""Slack: the Bolt app (``bolt_app.build_slack_app``) and its listeners, one small module per kind."""
