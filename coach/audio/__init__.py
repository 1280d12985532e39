"""Live sound: the audio devices and the player that plays a session through one of them."""
