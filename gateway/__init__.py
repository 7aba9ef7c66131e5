"""mail2sms: an emulator of the iSendPro mail 2 SMS gateway."""

__version__ = "0.1.0"
