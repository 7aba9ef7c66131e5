"""`python -m gateway` is the `mail2sms` command."""

from gateway.cli import main

raise SystemExit(main())
