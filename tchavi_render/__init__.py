"""tchavi-render: render video storyboards declared as code on the Tchavi video API."""

__version__ = "0.1.0"
