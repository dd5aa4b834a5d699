"""One exception root with one base per area; leaves also inherit the builtin they resemble."""


class IonmError(Exception):
    """Root of every error the appliance raises on purpose."""


class ConfigError(IonmError, ValueError):
    """A configuration value is missing, of the wrong type, or out of range."""


class FrontEndError(IonmError, OSError):
    """The front end (chip, board, port, recording) failed or is not what was expected."""


class FrameError(IonmError, ValueError):
    """A frame or packet from the front end is corrupt."""


class RecordingError(IonmError, ValueError):
    """A recording file is truncated, corrupt or not of a supported format."""


class CommandError(IonmError, ValueError):
    """A command (MQTT, CLI, button) is malformed or not allowed."""
