"""The one exception type users see.

Every error caused by input (a missing file, a corpus too small for the requested
vocabulary, a corrupt download, a diverged run) is raised as :class:`QwemError` with a
message that names the problem and the fix.  The command line prints the message and
exits with status 2 instead of showing a traceback.
"""


class QwemError(Exception):
    """An input or environment problem with a message meant for the user."""
