"""Helpers shared by the test packages: waiting with a deadline, a clock tests move, the
checkouts the CLI runs on (`Project`, `Machine`) and the storyboards they render."""
