"""The one exception type the CLI shows as a single line with exit code 2."""


class UserError(Exception):
    """Bad input from a user (a file, a flag, a URL). The message names what and where."""
