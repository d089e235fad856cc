"""The `crm-gateway` command (typer): the entry point and the daily commands (main.py), the
app and what the commands share (app.py), the admin command groups (admin.py), the help's
layout (help.py). Arguments, output and exit codes only: what a command does is elsewhere."""
