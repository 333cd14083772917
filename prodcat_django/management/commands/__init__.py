"""``manage.py prodcat_*`` commands: one module per command, each calling the service layer."""
