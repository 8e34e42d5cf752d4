"""The `dealgraph` command line: every command and group, in the order --help lists them.
Each group lives in its own module: serve (serve, schema, demo-data), database (migrate),
users (users, tokens), export and imports (import)."""

from __future__ import annotations

import typer

from server.cli import database, export, imports, serve, users

app = typer.Typer(help="dealgraph: a GraphQL API for CRM opportunities.", no_args_is_help=True)
app.command()(database.migrate)
app.command()(serve.schema)
app.command("demo-data")(serve.demo_data)
app.command()(serve.serve)
app.add_typer(users.users_app, name="users")
app.add_typer(users.tokens_app, name="tokens")
app.add_typer(export.export_app, name="export")
app.add_typer(imports.import_app, name="import")
