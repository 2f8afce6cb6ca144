"""Static files shipped with the app: stylesheet and icons (read with importlib.resources)."""
