"""Speech: voices that turn text into clips, the phrase cache, and tones."""
