"""`python -m tchavi_render` runs the CLI."""

from tchavi_render.cli.main import main

main()
