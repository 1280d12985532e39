"""coach: a hands-free, voice-guided audio coach for physical-therapy exercise."""

__version__ = "0.1.0"
