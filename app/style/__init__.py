"""The look: colour schemes as plain data and the Qt theme built from them."""
