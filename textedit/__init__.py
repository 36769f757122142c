"""textedit: closed-form knowledge edits for the text encoders of text-to-image models."""

__version__ = "0.1.0"
