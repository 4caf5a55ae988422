"""The error every prompt loader raises: one line naming the file, the line and the item."""


class PromptError(Exception):
    """A prompt file is invalid; the message names the file and the item."""
